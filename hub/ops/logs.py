"""Log formatting: `general_settings.json_logs: true` makes every log record one JSON object per line."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import orjson

# Attributes every LogRecord has; anything else on a record came from `extra=` and goes into the JSON object.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(value: object) -> object:
    """`value` with control characters written as escapes (`\\n`, `\\x00`, `\\u2028`), when it is a string: what a
    client sent (a percent-decoded path, a model name, a request id) goes into a text log line as one line, never as
    a forged line of its own or a NUL that makes the file binary."""
    if not isinstance(value, str) or _UNPRINTABLE.search(value) is None:
        return value
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), value)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, `extra=` fields, and the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD and not name.startswith("_"):
                out[name] = value
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack_info"] = self.formatStack(record.stack_info)
        return orjson.dumps(out, default=str).decode()


def _iso(created: float) -> str:
    whole = time.gmtime(created)
    return time.strftime("%Y-%m-%dT%H:%M:%S", whole) + f".{int(created % 1 * 1000):03d}Z"


def use_json_logs(root: logging.Logger | None = None) -> None:
    """Give every handler of the root logger the JSON formatter (call after `logging.basicConfig`)."""
    root = root or logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        handler.setFormatter(JsonFormatter())
