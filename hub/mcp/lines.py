"""Newline-delimited JSON-RPC framing for stdio, linear in the message length (`hub.mcp.stdio_client`,
`hub.mcp.stdio_wire`): lines are split as bytes, each byte looked at once, and a line over the limit comes out as
`Oversized` (its first and last bytes, to find the id of the request it answers) instead of being kept."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import mcp_types as types
import orjson
import pydantic_core

_EDGE = 1024
_ID = rb'(-?\d+|"(?:[^"\\]|\\.){0,200}")'
_JSONRPC = rb'(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?'
_HEAD = re.compile(rb"^\s*\{\s*" + _JSONRPC + rb'(?:"id"\s*:\s*' + _ID + rb'\s*,\s*)?"(?:result|error)"\s*:')
_TAIL = re.compile(rb'"id"\s*:\s*' + _ID + rb"\s*\}\s*$")
_DIGITS = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 19


def inexact(data: bytes) -> bool:
    """Whether `data` may hold a number orjson reads inexactly: an integer beyond 64 bits (19 digits or more) becomes
    a float, where the SDK's parser (pydantic_core) keeps it. Digits in a string or a float count too: such a message
    is read the SDK's way, exact and a little slower (`hub.mcp.lean`, `hub.mcp.stdio_client`). About 0.4 us for a
    400-byte line, where a regular expression took 2-6; but it copies the line, about 0.7 ms a MB (`exact_json`)."""
    return _LONG_RUN in data.translate(_DIGITS)


EXACT_ABOVE = 16 * 1024
"""Longer messages are read by pydantic_core alone (`exact_json`): scanning them for long digit runs first cost
0.6-1.2 ms a MB on top of orjson, and pydantic_core reads a large text result faster than orjson does."""


def exact_dumps(value: Any, *, line: bool = False, indent: bool = False) -> bytes:
    """`value` as JSON with every integer exact (a line: with its newline; `indent`: by two spaces, for people): by
    orjson, or by pydantic_core (as the SDK writes it) for what orjson refuses, an integer over 64 bits. Raises
    ValueError or `pydantic_core.PydanticSerializationError` when neither can (nested too deep)."""
    try:
        option = (orjson.OPT_APPEND_NEWLINE if line else 0) | (orjson.OPT_INDENT_2 if indent else 0)
        return orjson.dumps(value, option=option)
    except orjson.JSONEncodeError:
        pass
    data = pydantic_core.to_json(value, indent=2 if indent else None)
    return data + b"\n" if line else data


def exact_json(data: bytes) -> Any:
    """`data` parsed with every integer exact: by orjson when it is short and holds no long digit run, else by
    pydantic_core (the SDK's parser). Raises ValueError (orjson.JSONDecodeError is one) for what is not JSON."""
    if len(data) > EXACT_ABOVE or inexact(data):
        return pydantic_core.from_json(data)
    return orjson.loads(data)


def read_id(raw: bytes | None) -> types.RequestId | None:
    """The request id written as `raw` (a JSON string or integer found by a regular expression); None for none, or for
    one that is no valid JSON (`"\\x"`) or no UTF-8 (a lone surrogate `"\\ud800"`, which could not be written back)."""
    try:
        value = orjson.loads(raw) if raw is not None else None
    except ValueError:
        return None
    return value if isinstance(value, str | int) else None  # an integer orjson reads as a float is no id of ours


def mended(line: bytes) -> bytes | None:
    """`line` rewritten so that a strict parser reads it, when it is JSON only a lenient one reads: bytes that are no
    UTF-8, and lone UTF-16 surrogate escapes (`"\\ud83d"`, which Node writes for a string cut inside an emoji), become
    U+FFFD. pydantic and orjson refuse both; Python's json reads the escapes. None when it is no JSON (or is nested
    too deep to read or write)."""
    try:
        value = _mend(json.loads(line.decode("utf-8", "replace")))
        return exact_dumps(value)
    except (ValueError, RecursionError, pydantic_core.PydanticSerializationError):
        return None


def _mend(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:  # a lone surrogate: one U+FFFD for it
            return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        return value
    if isinstance(value, dict):
        return {_mend(k): _mend(v) for k, v in value.items()}  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
    if isinstance(value, list):
        return [_mend(v) for v in value]  # pyright: ignore[reportUnknownVariableType]
    return value


def answer_id(line: bytes) -> types.RequestId | None:
    """The id of the request a line that cannot be read answers, when it starts (or ends) as an answer naming it."""
    return Oversized(line[:_EDGE], line[-_EDGE:], len(line)).response_id()


@dataclass
class Oversized:
    """A line longer than the limit: its first and last bytes and its length."""

    head: bytes
    tail: bytes
    size: int

    def response_id(self) -> types.RequestId | None:
        """The id of the request this message answers, if it is a response and the id is at its start or end."""
        head = _HEAD.match(self.head)
        if head is None:
            return None
        raw = head.group(1)
        if raw is None:
            tail = _TAIL.search(self.tail)
            raw = tail.group(1) if tail is not None else None
        return read_id(raw)

    @property
    def may_be_response(self) -> bool:
        return b'"method"' not in self.head


class LineSplitter:
    """Splits a byte stream into lines in linear time; a line over `limit` bytes comes out as `Oversized`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._pending = bytearray()
        self._skipping: Oversized | None = None

    def feed(self, chunk: bytes) -> list[bytes | Oversized]:
        out: list[bytes | Oversized] = []
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            out.append(self._finish(chunk[start:end]))
            start = end + 1
        self._keep(chunk[start:])
        return out

    def rest(self) -> bytes | Oversized:
        """What is left after the last newline (a last message without one), once the stream has ended."""
        return self._finish(b"")

    def _keep(self, piece: bytes) -> None:
        if self._skipping is not None:
            self._skip(piece)
            return
        self._pending += piece
        if len(self._pending) > self.limit:
            pending = bytes(self._pending)
            self._pending.clear()
            self._skipping = Oversized(pending[:_EDGE], b"", 0)
            self._skip(pending)

    def _skip(self, piece: bytes) -> None:
        assert self._skipping is not None
        self._skipping.size += len(piece)
        self._skipping.tail = (self._skipping.tail + piece[-_EDGE:])[-_EDGE:]

    def _finish(self, piece: bytes) -> bytes | Oversized:
        if self._skipping is None and len(self._pending) + len(piece) <= self.limit:
            line = bytes(self._pending) + piece if self._pending else piece
            self._pending.clear()
            return line
        self._keep(piece)
        skipped, self._skipping = self._skipping, None
        assert skipped is not None
        return skipped
