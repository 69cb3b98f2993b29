"""Coerce JSON tool parameters to the Python types asyncpg's binary codecs expect for each `$n` placeholder."""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from tools.postgres_db.databases import InvalidArgument, JSONValue

_TRUE = {"true", "t", "yes", "y", "on", "1"}
_FALSE = {"false", "f", "no", "n", "off", "0"}


def coerce_params(params: Sequence[JSONValue], type_names: Sequence[str]) -> list[Any]:
    """Convert each parameter for its placeholder type (LLMs often send numbers and dates as strings).

    Raises:
        InvalidArgument: the count does not match the placeholders, or a value does not fit its type.
    """
    if len(params) != len(type_names):
        raise InvalidArgument(
            f"The statement has {len(type_names)} placeholder(s) ($1, $2, ...) but {len(params)} param(s) were given."
        )
    return [
        _coerce(index, value, name) for index, (value, name) in enumerate(zip(params, type_names, strict=True), start=1)
    ]


def _coerce(index: int, value: JSONValue, type_name: str) -> Any:
    """Convert one parameter, naming the placeholder when it does not fit."""
    if value is None:
        return None
    try:
        if type_name.startswith("_") and isinstance(value, list):
            return [_coerce(index, item, type_name[1:]) for item in value]  # pyright: ignore[reportUnknownVariableType]
        converter = _CONVERTERS.get(type_name)
        return value if converter is None else converter(value)
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise InvalidArgument(f"Parameter ${index} ({value!r}) is not a valid {type_name}: {exc}") from exc


def _to_int(value: Any) -> int:
    """Accept ints, integral floats and decimal strings."""
    if isinstance(value, bool):
        raise TypeError("booleans are not integers")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError("not an integer")
    return int(value) if not isinstance(value, str) else int(value.strip())


def _to_bool(value: Any) -> bool:
    """Accept booleans, 0/1 and PostgreSQL's boolean spellings."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ValueError("expected true or false")


def _to_text(value: Any) -> str:
    """Render non-strings as JSON text (true, 3.5, {"a": 1})."""
    return value if isinstance(value, str) else json.dumps(value)


def _to_bytes(value: Any) -> bytes:
    """Accept PostgreSQL hex format (\\x...) or plain text."""
    text = str(value)
    return bytes.fromhex(text[2:]) if text.startswith("\\x") else text.encode()


def _from_iso(parse: Callable[[str], Any]) -> Callable[[Any], Any]:
    """Build a converter that parses ISO 8601 strings and passes other values through."""
    return lambda value: parse(value.strip()) if isinstance(value, str) else value


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    **dict.fromkeys(("int2", "int4", "int8", "oid"), _to_int),
    **dict.fromkeys(("float4", "float8"), float),
    "numeric": lambda value: Decimal(str(value)),
    "bool": _to_bool,
    **dict.fromkeys(("text", "varchar", "bpchar", "name", "char", "citext", "unknown"), _to_text),
    "bytea": _to_bytes,
    "uuid": lambda value: uuid.UUID(str(value)),
    "date": _from_iso(datetime.date.fromisoformat),
    **dict.fromkeys(("timestamp", "timestamptz"), _from_iso(datetime.datetime.fromisoformat)),
    **dict.fromkeys(("time", "timetz"), _from_iso(datetime.time.fromisoformat)),
}
