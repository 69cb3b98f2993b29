"""OTLP export: ended spans are buffered, then sent in batches as `ExportTraceServiceRequest` protobufs over HTTP
(`http/protobuf`) or gRPC, sent from a worker thread so the event loop never waits on the collector.

The protobuf is written by hand (`proto`): the messages are few and fixed, and the SDK's encoder costs about 40 µs
per span.
"""

from __future__ import annotations

import contextlib
import logging
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import anyio

from hub.ops.tracing.config import TracingSettings
from hub.ops.tracing.proto import encode_resource, encode_scope, request, span_field
from hub.ops.tracing.tracer import RecordedSpan

logger = logging.getLogger("toolhub.tracing")

MAX_BATCH = 512
MAX_BATCH_BYTES = 3_500_000
"""A batch is cut before this size: collectors refuse bigger requests (gRPC's default limit is 4 MiB)."""
MAX_QUEUE = 8192
MAX_QUEUE_BYTES = 32 << 20
"""Spans (and their encoded bytes) kept while the collector is slow or down; past either, new spans are dropped (and
counted), as is a span too big for any batch."""
ENCODE_EVERY = 32
"""Ended spans wait until there are this many (or the next export) to be encoded together."""
INTERVAL = 2.0
"""Seconds between two exports when fewer than `MAX_BATCH` spans are waiting."""
__all__ = ["OtlpExporter", "Sender"]
GRPC_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
Sender = Callable[[bytes], None]


class OtlpExporter:
    """The buffer `SpanRecorder` ends spans into, and the task that exports it (`running()`)."""

    def __init__(self, settings: TracingSettings, resource: Mapping[str, Any], scope: tuple[str, str],
                 sender: Sender | None = None) -> None:  # fmt: skip
        self.settings = settings
        self.buffer: list[bytes] = []
        """Spans encoded soon after they end: bytes are not tracked by the garbage collector, span objects would be."""
        self.pending: list[RecordedSpan] = []
        """Ended spans not encoded yet (fewer than `ENCODE_EVERY`)."""
        self.size = 0
        """Bytes in `buffer`."""
        self.dropped = 0
        self.failed = 0
        self._resource = encode_resource(resource)
        self._scope = encode_scope(*scope)
        self._send, self._close = (sender, _nothing) if sender is not None else _sender(settings)
        self._wake: anyio.Event | None = None
        self._last_warning = 0.0

    def add(self, span: RecordedSpan) -> None:
        """`RecordedSpan.end()`: keep it for the next batch (called on the event loop's thread). Spans are encoded
        `ENCODE_EVERY` at a time: one at a time, between two requests' work, the encoder ran at half its speed."""
        pending = self.pending
        pending.append(span)
        if len(pending) >= ENCODE_EVERY:
            self.encode()

    def encode(self) -> None:
        """Encode the pending spans into `buffer`; past its bounds, spans are dropped (and counted)."""
        spans, self.pending = self.pending, []
        buffer = self.buffer
        for span in spans:
            if len(buffer) >= MAX_QUEUE:
                self.dropped += 1
                continue
            encoded = span_field(span)
            size = len(encoded)
            if self.size + size > MAX_QUEUE_BYTES or size > MAX_BATCH_BYTES:
                self.dropped += 1
                continue
            buffer.append(encoded)
            self.size += size
        if (len(buffer) >= MAX_BATCH or self.size >= MAX_BATCH_BYTES) and self._wake is not None:
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
        self.encode()
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
            self.encode()
            if self.buffer:
                await self._send_batch()

    def _export(self, batch: Sequence[bytes]) -> None:
        try:
            self._send(request(self._resource, self._scope, batch))
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
