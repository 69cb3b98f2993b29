"""The OpenTelemetry SDK side: a `TracerProvider` with a batching OTLP exporter, opened and flushed by the lifespan.

Imported only when tracing is on: the SDK and the exporters are the optional extra `toolhub[otel]`. The provider
is the app's own, not the process-global one, so two apps in one process (tests, a reload) never share spans.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import Tracer

import hub
from hub.ops.tracing.config import TracingSettings


class Tracing:
    """The app's tracer: None until `running()` opened the provider, and again once it closed."""

    def __init__(self, settings: TracingSettings, *, exporter: SpanExporter | None = None, batch: bool = True) -> None:
        self.settings = settings
        self.tracer: Tracer | None = None
        self.provider: TracerProvider | None = None
        self._exporter = exporter
        self._batch = batch
        """False: export each span as it ends (tests); True: batches from a background thread."""

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Tracing]:
        """Open the provider; on exit, export what is left (in a thread: the exporter blocks) and close it."""
        exporter = self._exporter or otlp_exporter(self.settings)
        processor: SpanProcessor = BatchSpanProcessor(exporter) if self._batch else SimpleSpanProcessor(exporter)
        provider = tracer_provider(self.settings, processor)
        self.provider = provider
        self.tracer = provider.get_tracer("toolhub", hub.__version__)
        try:
            yield self
        finally:
            self.tracer = None
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(provider.shutdown)


def tracer_provider(settings: TracingSettings, processor: SpanProcessor) -> TracerProvider:
    resource = Resource({**settings.resource, "service.name": settings.service_name,
                         "service.version": hub.__version__})  # fmt: skip
    provider = TracerProvider(resource=resource, sampler=sampler(settings), shutdown_on_exit=False)
    provider.add_span_processor(processor)
    return provider


def sampler(settings: TracingSettings) -> Sampler:
    """The sampler `OTEL_TRACES_SAMPLER` names (`sample_ratio`: parent-based ratio)."""
    name = settings.sampler
    root: Sampler
    if name.endswith("always_off"):
        root = ALWAYS_OFF
    elif name.endswith("traceidratio"):
        root = TraceIdRatioBased(settings.sample_ratio)
    else:
        root = ALWAYS_ON
    return ParentBased(root) if name.startswith("parentbased_") else root


def otlp_exporter(settings: TracingSettings) -> SpanExporter:
    headers = dict(settings.headers)
    if settings.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        insecure = settings.endpoint.startswith("http://")
        return GrpcExporter(settings.endpoint, insecure=insecure, headers=headers, timeout=settings.timeout)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(settings.endpoint, headers=headers, timeout=settings.timeout)
