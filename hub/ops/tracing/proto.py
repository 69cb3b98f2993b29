"""The OTLP protobuf, written by hand: `ExportTraceServiceRequest` and the few messages under it (opentelemetry-proto's
`trace/v1/trace.proto`, `common/v1/common.proto`, `resource/v1/resource.proto`). tests/ops decode what this writes
with opentelemetry-proto's own classes.

Every ended span is encoded on the event loop's thread, so the per-span path is written for speed: most attributes
repeat from request to request (method, route, model, provider...), and an attribute seen before with the same
value is one dictionary lookup (`_PAIRS`); the others are built in one `join` each, without nested helper calls.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.trace import StatusCode

from hub.ops.tracing.tracer import UNSET_STATUS, RecordedSpan

MAX_VALUE_BYTES = 64 << 10
"""A string attribute, event attribute, span name or status message is cut to this many UTF-8 bytes (captured
prompts and tool results can be megabytes)."""
CACHED = 4096
"""At most this many encoded keys, names and (key, value) pairs are kept (`_KEYS`, `_NAMES`, `_PAIRS`), each of at
most `CACHED_BYTES`: a bound on their memory whatever names, paths and values the gateway sees."""
CACHED_BYTES = 256

_DOUBLE = struct.Struct("<d").pack
_FIXED32 = struct.Struct("<I").pack
_TIMES = struct.Struct("<BQBQ").pack
"""`Span.start_time_unix_nano` (field 7) and `end_time_unix_nano` (field 8), fixed64 each, with their tags."""
_SMALL = [bytes((i,)) for i in range(0x80)]
_KINDS = [b"\x30" + _SMALL[kind + 1] for kind in range(5)]
"""`Span.kind` (field 6): the API's SpanKind values are the protocol's minus one."""
_FLAGS = {(flags, remote): b"\x85\x01" + _FIXED32(flags | (0x300 if remote else 0x100)) for flags in range(256)
          for remote in (False, True)}  # fmt: skip
"""`Span.flags` (field 16): the W3C flags, "is the parent remote" known (0x100), and its answer (0x200: from an
inbound traceparent)."""
_STEADY = frozenset(
    """gen_ai.operation.name gen_ai.provider.name gen_ai.request.model gen_ai.response.model gen_ai.tool.name
    server.address server.port http.request.method http.route url.scheme url.path client.address
    http.response.status_code toolhub.model_group toolhub.deployment_id toolhub.retry toolhub.fallback toolhub.round
    toolhub.mcp.server mcp.method.name error.type toolhub.stream gen_ai.response.finish_reasons""".split()
)
"""Attributes with few values: their encoded (key, value) pairs are kept."""
_PAIRS: dict[tuple[str, type, Any], bytes] = {}
_KEYS: dict[str, bytes] = {}
_NAMES: dict[str, bytes] = {}


def encode(spans: Sequence[RecordedSpan], resource: bytes, scope: bytes) -> bytes:
    """`ExportTraceServiceRequest{resource_spans: [{resource, scope_spans: [{scope, spans}]}]}`, with `resource` and
    `scope` already encoded as field 1 of their parents (`encode_resource`, `encode_scope`)."""
    return request(resource, scope, [span_field(s) for s in spans])


def request(resource: bytes, scope: bytes, spans: Sequence[bytes]) -> bytes:
    """The request around spans already encoded by `span_field`."""
    return ld(1, resource + ld(2, scope + b"".join(spans)))


def encode_resource(attributes: Mapping[str, Any]) -> bytes:
    return ld(1, b"".join([ld(1, _kv(k, v)) for k, v in attributes.items()]))


def encode_scope(name: str, version: str) -> bytes:
    return ld(1, ld(1, name.encode()) + ld(2, version.encode()))


def span_field(span: RecordedSpan) -> bytes:
    """`ScopeSpans.spans` (field 2): one span, tag and length included."""
    trace_id, span_id, _, flags, state, _ = span.context  # a tuple: its properties cost a call each
    out = [b"", b"\x0a\x10", trace_id.to_bytes(16, "big"), b"\x12\x08", span_id.to_bytes(8, "big")]
    if state:
        out.append(_field(b"\x1a", state.to_header().encode()))
    if span.parent_id:
        out += (b"\x22\x08", span.parent_id.to_bytes(8, "big"))
    out += (_NAMES.get(span.name) or _name(span.name), _KINDS[span.kind._value_])
    out.append(_TIMES(0x39, span.start_ns, 0x41, span.end_ns))
    pairs = _PAIRS
    for key, value in span.attributes.items():
        kind = type(value)
        try:
            encoded = pairs.get((key, kind, tuple(value) if kind is list else value))  # pyright: ignore[reportUnknownArgumentType]
        except TypeError:  # an unhashable value
            encoded = None
        out.append(encoded or _attribute(key, value, kind))
    if span.events:
        out += [_event(*event) for event in span.events]
    status = span.status
    if status is not UNSET_STATUS and status.status_code is not StatusCode.UNSET:
        message = _field(b"\x12", _text(status.description)) if status.description else b""
        out.append(_field(b"\x7a", message + b"\x18" + _SMALL[status.status_code._value_]))
    out.append(_FLAGS[flags, span.remote_parent])
    out[0] = b"\x12" + _varint(sum(map(len, out)))
    return b"".join(out)


def _event(name: str, at: int, attributes: Mapping[str, Any]) -> bytes:
    """`Span.events` (field 11)."""
    event = [b"\x09", at.to_bytes(8, "little"), _field(b"\x12", _text(name))]
    event += [_field(b"\x1a", _kv(k, v)) for k, v in attributes.items()]
    return _field(b"\x5a", b"".join(event))


def _name(name: str) -> bytes:
    """`Span.name` (field 5)."""
    encoded = _field(b"\x2a", _text(name))
    if len(_NAMES) < CACHED and len(encoded) <= CACHED_BYTES:
        _NAMES[name] = encoded
    return encoded


def _attribute(key: str, value: Any, kind: type) -> bytes:
    """`Span.attributes` (field 9): one `KeyValue`, kept in `_PAIRS` if its key has few values."""
    name = _KEYS.get(key) or _key(key)
    if kind is str and len(value) < 100 and value.isascii():  # most values: one join
        size = len(value)
        encoded = b"".join((b"\x4a", _varint(len(name) + size + 4), name, b"\x12", _SMALL[size + 2], b"\x0a",
                            _SMALL[size], value.encode()))  # fmt: skip
    elif kind is int and 0 <= value < 1 << 63:  # token counts, ports, statuses
        number = _varint(value)
        encoded = b"".join((b"\x4a", _varint(len(name) + len(number) + 3), name, b"\x12", _SMALL[len(number) + 1],
                            b"\x18", number))  # fmt: skip
    elif kind is float:
        encoded = b"".join((b"\x4a", _varint(len(name) + 11), name, b"\x12\x09\x21", _DOUBLE(value)))
    else:
        encoded = _field(b"\x4a", name + _field(b"\x12", _any(value)))
    if key in _STEADY and len(_PAIRS) < CACHED and len(encoded) <= CACHED_BYTES:
        try:
            _PAIRS[key, kind, tuple(value) if kind is list else value] = encoded  # pyright: ignore[reportUnknownArgumentType]
        except TypeError:
            pass
    return encoded


def _key(key: str) -> bytes:
    """`KeyValue.key` (field 1)."""
    name = _field(b"\x0a", key.encode())
    if len(_KEYS) < CACHED and len(name) <= CACHED_BYTES:
        _KEYS[key] = name
    return name


def _kv(key: str, value: Any) -> bytes:
    return (_KEYS.get(key) or _key(key)) + _field(b"\x12", _any(value))


def _text(value: str) -> bytes:
    """UTF-8, cut to `MAX_VALUE_BYTES` on a character boundary."""
    data = value.encode()
    return data if len(data) <= MAX_VALUE_BYTES else data[:MAX_VALUE_BYTES].decode(errors="ignore").encode()


def _any(value: Any) -> bytes:
    """`AnyValue`."""
    if isinstance(value, str):
        return _field(b"\x0a", _text(value))
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        return b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE(value)
    if isinstance(value, list | tuple):
        return _field(b"\x2a", b"".join([_field(b"\x0a", _any(item)) for item in value]))  # pyright: ignore[reportUnknownVariableType]
    return _field(b"\x0a", _text(str(value)))


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field whose tag is already encoded."""
    size = len(payload)
    return tag + (_SMALL[size] if size < 0x80 else _varint(size)) + payload


def ld(field: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return _field(_varint(field << 3 | 2), payload)


def _varint(value: int) -> bytes:
    if value < 0x80:
        return _SMALL[value]
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
