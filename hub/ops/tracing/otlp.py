"""OTLP export: ended spans are buffered, then sent in batches as `ExportTraceServiceRequest` protobufs over HTTP
(`http/protobuf`) or gRPC, encoded and sent from a worker thread so the event loop never waits on the collector.

The protobuf is written by hand (`encode`): the messages are few and fixed (opentelemetry-proto's
`trace/v1/trace.proto`, `common/v1/common.proto`, `resource/v1/resource.proto`), and the SDK's encoder costs about
40 µs per span. tests/ops decode what this writes with opentelemetry-proto's own classes.
"""

from __future__ import annotations

import contextlib
import logging
import struct
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import anyio

from hub.ops.tracing.config import TracingSettings
from hub.ops.tracing.tracer import RecordedSpan

logger = logging.getLogger("toolhub.tracing")

MAX_BATCH = 512
MAX_BATCH_BYTES = 3_500_000
"""A batch is cut before this size: collectors refuse bigger requests (gRPC's default limit is 4 MiB)."""
MAX_QUEUE = 8192
MAX_QUEUE_BYTES = 32 << 20
"""Spans (and their encoded bytes) kept while the collector is slow or down; past either, new spans are dropped (and
counted), as is a span too big for any batch."""
MAX_VALUE_BYTES = 64 << 10
"""A string attribute, event attribute, span name or status message is cut to this many UTF-8 bytes (captured
prompts and tool results can be megabytes)."""
INTERVAL = 2.0
"""Seconds between two exports when fewer than `MAX_BATCH` spans are waiting."""
GRPC_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
Sender = Callable[[bytes], None]


class OtlpExporter:
    """The buffer `SpanRecorder` ends spans into, and the task that exports it (`running()`)."""

    def __init__(self, settings: TracingSettings, resource: Mapping[str, Any], scope: tuple[str, str],
                 sender: Sender | None = None) -> None:  # fmt: skip
        self.settings = settings
        self.buffer: list[bytes] = []
        """Spans encoded as they end: bytes are not tracked by the garbage collector, span objects would be."""
        self.size = 0
        """Bytes in `buffer`."""
        self.dropped = 0
        self.failed = 0
        self._resource = _resource(resource)
        self._scope = _scope(*scope)
        self._send, self._close = (sender, _nothing) if sender is not None else _sender(settings)
        self._wake: anyio.Event | None = None
        self._last_warning = 0.0

    def add(self, span: RecordedSpan) -> None:
        """`RecordedSpan.end()`: keep it for the next batch (called on the event loop's thread)."""
        buffer = self.buffer
        if len(buffer) >= MAX_QUEUE:
            self.dropped += 1
            return
        encoded = _ld(2, _span(span))
        size = len(encoded)
        if self.size + size > MAX_QUEUE_BYTES or size > MAX_BATCH_BYTES:
            self.dropped += 1
            return
        buffer.append(encoded)
        self.size += size
        if (len(buffer) == MAX_BATCH or self.size >= MAX_BATCH_BYTES) and self._wake is not None:
            self._wake.set()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[OtlpExporter]:
        """Export in the background; on exit, export what is left."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._loop)
            try:
                yield self
            finally:
                tg.cancel_scope.cancel()
        try:
            with anyio.CancelScope(shield=True), anyio.move_on_after(self.settings.timeout + 1):
                await self.flush()
        finally:
            self._close()

    async def flush(self) -> None:
        """Send what is buffered, a batch at a time."""
        while self.buffer:
            await self._send_batch()

    async def _send_batch(self) -> None:
        """Send the next batch from the worker thread; a batch a cancellation kept from being sent stays buffered."""
        batch = self._take()
        done = False

        def export() -> None:
            nonlocal done
            self._export(batch)
            done = True

        try:
            await anyio.to_thread.run_sync(export)
        finally:
            if not done:
                self.buffer[:0] = batch
                self.size += sum(map(len, batch))

    def _take(self) -> list[bytes]:
        """The next batch: up to `MAX_BATCH` spans and `MAX_BATCH_BYTES` (a span is never bigger, see `add`)."""
        count = size = 0
        for encoded in self.buffer[:MAX_BATCH]:
            if size + len(encoded) > MAX_BATCH_BYTES:
                break
            count, size = count + 1, size + len(encoded)
        batch = self.buffer[:count]
        del self.buffer[:count]
        self.size -= size
        return batch

    async def _loop(self) -> None:
        """A batch when one is full or `INTERVAL` has passed, then wait again: spans that arrive while a batch is
        being sent wait for the next one (sending them at once made a stream of small batches under load, each
        paying a thread hand-off and an HTTP request: about 30 µs of CPU per request at 2 spans each)."""
        while True:
            if len(self.buffer) < MAX_BATCH and self.size < MAX_BATCH_BYTES:  # no await since the check: `add` sets
                self._wake = anyio.Event()  # this very event
                with anyio.move_on_after(INTERVAL):
                    await self._wake.wait()
            if self.buffer:
                await self._send_batch()

    def _export(self, batch: Sequence[bytes]) -> None:
        try:
            self._send(_ld(1, self._resource + _ld(2, self._scope + b"".join(batch))))
        except Exception as exc:  # a collector that is down must not take the gateway with it
            self.failed += len(batch)
            now = time.monotonic()
            if now - self._last_warning > 60:
                self._last_warning = now
                logger.warning("tracing: %d spans not exported to %s: %s (%d so far)", len(batch),
                               self.settings.endpoint, exc, self.failed)  # fmt: skip


def _nothing() -> None:
    return None


def _sender(settings: TracingSettings) -> tuple[Sender, Callable[[], None]]:
    """(send a body, close): urllib opens a connection per batch; gRPC keeps one channel, closed at shutdown."""
    headers = {**settings.headers}
    if settings.protocol == "grpc":
        return _grpc_sender(settings.endpoint, headers, settings.timeout)
    headers = {"Content-Type": "application/x-protobuf", "User-Agent": "toolhub", **headers}

    def send(body: bytes) -> None:
        request = urllib.request.Request(settings.endpoint, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=settings.timeout) as response:
            response.read()

    return send, _nothing


def _grpc_sender(endpoint: str, headers: Mapping[str, str], timeout: float) -> tuple[Sender, Callable[[], None]]:
    import grpc

    parts = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    target = parts.netloc
    channel = grpc.secure_channel(target, grpc.ssl_channel_credentials()) if parts.scheme == "https" else (
        grpc.insecure_channel(target))  # fmt: skip
    export = channel.unary_unary(GRPC_METHOD)  # bytes in, bytes out: the body is already a protobuf
    metadata = tuple((k.lower(), v) for k, v in headers.items())

    def send(body: bytes) -> None:
        export(body, timeout=timeout, metadata=metadata)

    return send, channel.close


# -- protobuf ----------------------------------------------------------------------------------------------------

_DOUBLE = struct.Struct("<d").pack
_FIXED64 = struct.Struct("<Q").pack
_FIXED32 = struct.Struct("<I").pack
_KEYS: dict[str, bytes] = {}


def encode(spans: Sequence[RecordedSpan], resource: bytes, scope: bytes) -> bytes:
    """`ExportTraceServiceRequest{resource_spans: [{resource, scope_spans: [{scope, spans}]}]}`, with `resource` and
    `scope` already encoded as field 1 of their parents (`_resource`, `_scope`)."""
    scope_spans = scope + b"".join([_ld(2, _span(s)) for s in spans])
    return _ld(1, resource + _ld(2, scope_spans))


def _resource(attributes: Mapping[str, Any]) -> bytes:
    return _ld(1, b"".join([_ld(1, _kv(k, v)) for k, v in attributes.items()]))


def _scope(name: str, version: str) -> bytes:
    return _ld(1, _ld(1, name.encode()) + _ld(2, version.encode()))


def _span(span: RecordedSpan) -> bytes:
    ctx = span.context
    out = [b"\x0a\x10", ctx.trace_id.to_bytes(16, "big"), b"\x12\x08", ctx.span_id.to_bytes(8, "big")]
    if ctx.trace_state:
        out.append(_field(b"\x1a", ctx.trace_state.to_header().encode()))
    if span.parent_id:
        out += (b"\x22\x08", span.parent_id.to_bytes(8, "big"))
    out += (_field(b"\x2a", _text(span.name)), _KINDS[span.kind.value])
    out += (b"\x39", _FIXED64(span.start_ns), b"\x41", _FIXED64(span.end_ns))
    out += [_attribute(k, v) for k, v in span.attributes.items()]
    for name, at, attributes in span.events:
        event = [b"\x09", _FIXED64(at), _field(b"\x12", _text(name))]
        event += [_field(b"\x1a", _kv(k, v)) for k, v in attributes.items()]
        out.append(_field(b"\x5a", b"".join(event)))
    status = span.status
    if status.status_code.value:
        message = _field(b"\x12", _text(status.description)) if status.description else b""
        out.append(_field(b"\x7a", message + b"\x18" + _SMALL[status.status_code.value]))
    # flags: the W3C flags, "is the parent remote" known (0x100), and its answer (0x200: from an inbound traceparent)
    out += (b"\x85\x01", _FIXED32(int(ctx.trace_flags) | (0x300 if span.remote_parent else 0x100)))
    return b"".join(out)


def _text(value: str) -> bytes:
    """UTF-8, cut to `MAX_VALUE_BYTES` on a character boundary."""
    data = value.encode()
    return data if len(data) <= MAX_VALUE_BYTES else data[:MAX_VALUE_BYTES].decode(errors="ignore").encode()


def _attribute(key: str, value: Any) -> bytes:
    """`Span.attributes` (field 9): pairs of the few attributes with few values (method, model...) are encoded once."""
    if key not in _STEADY:
        return _field(b"\x4a", _kv(key, value))
    pair = (key, tuple(value) if isinstance(value, list) else value)  # pyright: ignore[reportUnknownArgumentType]
    try:
        encoded = _PAIRS.get(pair)
    except TypeError:  # an unhashable value
        return _field(b"\x4a", _kv(key, value))
    if encoded is None:
        encoded = _field(b"\x4a", _kv(key, value))
        if len(_PAIRS) < 4096:
            _PAIRS[pair] = encoded
    return encoded


def _kv(key: str, value: Any) -> bytes:
    name = _KEYS.get(key)
    if name is None:
        name = _field(b"\x0a", key.encode())
        if len(_KEYS) < 4096:
            _KEYS[key] = name
    return name + _field(b"\x12", _any(value))


_STEADY = frozenset(
    """gen_ai.operation.name gen_ai.provider.name gen_ai.request.model gen_ai.response.model gen_ai.tool.name
    server.address server.port http.request.method http.route url.scheme url.path client.address
    http.response.status_code toolhub.model_group toolhub.deployment_id toolhub.retry toolhub.fallback toolhub.round
    toolhub.mcp.server mcp.method.name error.type toolhub.stream gen_ai.response.finish_reasons""".split()
)
_PAIRS: dict[tuple[str, Any], bytes] = {}


def _any(value: Any) -> bytes:
    if isinstance(value, str):
        data = value.encode()  # `_text` inlined: most values are strings
        return _field(b"\x0a", data if len(data) <= MAX_VALUE_BYTES else _text(value))
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


def _ld(field: int, payload: bytes) -> bytes:
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


_SMALL = [bytes((i,)) for i in range(0x80)]
_KINDS = [b"\x30" + _SMALL[kind + 1] for kind in range(5)]
"""`Span.kind` (field 6): the API's SpanKind values are the protocol's minus one."""
