"""The app's tracing: the span recorder and its OTLP exporter, opened and flushed by the lifespan.

The recorder is the app's own, not OpenTelemetry's process-global provider, so two apps in one process (tests, a
reload) never share spans, and a provider some other library installs globally is left alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import hub
from hub.ops.tracing.config import TracingSettings
from hub.ops.tracing.otlp import OtlpExporter, Sender
from hub.ops.tracing.tracer import Sampling, SpanRecorder


class Tracing:
    """The app's tracer: None until `running()` opened the exporter, and again once it closed."""

    def __init__(self, settings: TracingSettings, *, sender: Sender | None = None) -> None:
        self.settings = settings
        self.tracer: SpanRecorder | None = None
        self.exporter: OtlpExporter | None = None
        self._sender = sender
        """Where encoded batches go instead of the collector (tests)."""

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Tracing]:
        """Export in the background; on exit, export what is left (at most the export timeout)."""
        settings = self.settings
        resource = {**settings.resource, "service.name": settings.service_name, "service.version": hub.__version__,
                    "telemetry.sdk.name": "toolhub", "telemetry.sdk.language": "python"}  # fmt: skip
        exporter = OtlpExporter(settings, resource, ("toolhub", hub.__version__), self._sender)
        async with exporter.running():
            self.exporter = exporter
            self.tracer = SpanRecorder(Sampling(settings.sampler, settings.sample_ratio), exporter.add)
            try:
                yield self
            finally:
                self.tracer = None
