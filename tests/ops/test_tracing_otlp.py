"""The span recorder, its sampling, and OTLP export: what `proto.encode` writes is read back with opentelemetry-proto's
own classes; export over gRPC goes to an in-process gRPC server."""

from __future__ import annotations

import logging
import threading
from concurrent import futures
from typing import Any

import anyio
import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.trace import NonRecordingSpan, SpanKind, Status, StatusCode, TraceState, set_span_in_context
from opentelemetry.trace.span import SpanContext, TraceFlags

from hub.ops.tracing import OtelSpec, otlp as otlp_module, proto, tracing_settings
from hub.ops.tracing.otlp import OtlpExporter
from hub.ops.tracing.proto import encode, encode_resource, encode_scope
from hub.ops.tracing.setup import Tracing
from hub.ops.tracing.tracer import RecordedSpan, Sampling, SpanRecorder
from tests.ops.otlp_receiver import Span, _attrs, _span  # pyright: ignore[reportPrivateUsage]


def decode(body: bytes) -> list[Span]:
    message = ExportTraceServiceRequest()
    message.ParseFromString(body)
    return [_span(s, _attrs(rs.resource.attributes), ss.scope.name) for rs in message.resource_spans
            for ss in rs.scope_spans for s in ss.spans]  # fmt: skip


def recorder(ratio: float = 1.0, name: str = "parentbased_traceidratio") -> tuple[SpanRecorder, list[RecordedSpan]]:
    ended: list[RecordedSpan] = []
    return SpanRecorder(Sampling(name, ratio), ended.append), ended


def remote(sampled: bool) -> Any:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    ctx = SpanContext(0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, True, flags, TraceState([("v", "1")]))
    return set_span_in_context(NonRecordingSpan(ctx))


def test_every_field_and_attribute_type_survives_encoding() -> None:
    tracer, ended = recorder()
    parent = tracer.start_span("POST /v1/chat/completions", remote(True), SpanKind.SERVER, {"s": "x", "b": True})
    child = tracer.start_span("chat m", set_span_in_context(parent), SpanKind.CLIENT)
    child.set_attributes({"neg": -5, "big": 2**40, "f": 0.25, "reasons": ["stop", "length"], "ints": [1, 2],
                          "other": {"a": 1}, "no": False, "ünï": "çødé"})  # fmt: skip
    child.record_exception(ValueError("bad value"))
    child.set_status(Status(StatusCode.ERROR, "upstream said no"))
    child.end()
    parent.end()
    resource, scope = encode_resource({"service.name": "toolhub"}), encode_scope("toolhub", "0.1.0")
    first, second = decode(encode(ended, resource, scope))
    assert (first.name, first.kind, first.status, first.scope, first.resource) == (
        "chat m", "CLIENT", "ERROR", "toolhub", {"service.name": "toolhub"},
    )  # fmt: skip
    assert first.attributes == {"neg": -5, "big": 2**40, "f": 0.25, "reasons": ["stop", "length"], "ints": [1, 2],
                                "other": "{'a': 1}", "no": False, "ünï": "çødé"}  # fmt: skip
    assert first.events == ["exception"]
    assert first.parent_id == second.span_id
    assert (second.trace_id, second.parent_id, second.kind) == (
        "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "SERVER",
    )  # fmt: skip
    assert second.attributes == {"s": "x", "b": True}
    assert second.duration_ns >= 0 and first.duration_ns >= 0
    message = ExportTraceServiceRequest()
    message.ParseFromString(encode(ended, resource, scope))
    raw = message.resource_spans[0].scope_spans[0].spans[0]
    assert (raw.status.message, raw.trace_state, raw.flags & 0xFF) == ("upstream said no", "v=1", 1)
    [event] = raw.events
    assert {kv.key for kv in event.attributes} == {"exception.type", "exception.message", "exception.stacktrace"}


def test_a_parent_based_sampler_keeps_the_callers_decision() -> None:
    tracer, _ = recorder(ratio=0.0)
    assert tracer.start_span("kept", remote(True)).is_recording()
    dropped = tracer.start_span("dropped", remote(False))
    assert not dropped.is_recording()
    ctx = dropped.get_span_context()
    assert (ctx.trace_id, ctx.trace_flags.sampled) == (0x4BF92F3577B34DA6A3CE929D0E0E4736, False)
    assert not tracer.start_span("new trace").is_recording()  # ratio 0: no new trace


@pytest.mark.parametrize(("name", "ratio", "parent", "recorded"), [
    ("always_on", 1.0, False, True),     # not parent-based: the caller's "not sampled" is ignored
    ("always_off", 1.0, True, False),
    ("traceidratio", 1.0, False, True),
    ("parentbased_always_off", 1.0, None, False),
    ("parentbased_always_on", 0.0, None, True),
    ("traceidratio", 0.0, True, False),  # a hard ratio: the caller's "sampled" does not override it
])  # fmt: skip
def test_the_standard_samplers(name: str, ratio: float, parent: bool | None, recorded: bool) -> None:
    tracer, _ = recorder(ratio, name)
    assert tracer.start_span("s", None if parent is None else remote(parent)).is_recording() is recorded


def test_a_ratio_samples_about_that_share_of_new_traces() -> None:
    tracer, _ = recorder(0.25)
    kept = sum(tracer.start_span("s").is_recording() for _ in range(4000))
    assert 800 < kept < 1200


def test_an_ended_span_ignores_later_changes_and_is_handed_over_once() -> None:
    tracer, ended = recorder()
    span = tracer.start_span("s")
    span.end()
    span.set_attribute("late", 1)
    span.end()
    assert len(ended) == 1 and "late" not in ended[0].attributes


def settings(**spec: Any) -> Any:
    found = tracing_settings(OtelSpec(endpoint="http://127.0.0.1:9", **spec), {})
    assert found is not None
    return found


@pytest.mark.anyio
async def test_the_exporter_sends_everything_left_when_it_closes_in_batches() -> None:
    sent: list[bytes] = []
    tracing = Tracing(settings(), sender=sent.append)
    async with tracing.running():
        assert tracing.tracer is not None
        for _ in range(otlp_module.MAX_BATCH + 3):
            tracing.tracer.start_span("s").end()
    assert tracing.tracer is None
    assert sum(len(decode(body)) for body in sent) == otlp_module.MAX_BATCH + 3
    assert decode(sent[0])[0].resource["service.name"] == "toolhub"


@pytest.mark.anyio
async def test_a_full_batch_is_sent_without_waiting_for_the_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(otlp_module, "INTERVAL", 3600.0)
    sent: list[bytes] = []
    arrived = anyio.Event()

    def send(body: bytes) -> None:  # in the exporter's worker thread
        sent.append(body)
        anyio.from_thread.run_sync(arrived.set)

    tracing = Tracing(settings(), sender=send)
    async with tracing.running():
        assert tracing.tracer is not None
        for _ in range(otlp_module.MAX_BATCH):
            tracing.tracer.start_span("s").end()
        with anyio.fail_after(30):  # the timer would wait an hour
            await arrived.wait()
    assert len(decode(sent[0])) == otlp_module.MAX_BATCH


@pytest.mark.anyio
async def test_spans_ended_while_a_batch_is_sent_wait_for_the_next_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under load, sending them at once made a stream of small batches (a thread hand-off and a request each)."""
    monkeypatch.setattr(otlp_module, "INTERVAL", 3600.0)
    sent: list[bytes] = []
    arrived, release = anyio.Event(), threading.Event()

    def send(body: bytes) -> None:  # in the exporter's worker thread
        sent.append(body)
        anyio.from_thread.run_sync(arrived.set)
        release.wait(30)

    tracing = Tracing(settings(), sender=send)
    async with tracing.running():
        exporter, tracer = tracing.exporter, tracing.tracer
        assert exporter is not None and tracer is not None
        with anyio.fail_after(30):
            while (first := exporter._wake) is None:  # noqa: ASYNC110  # pyright: ignore[reportPrivateUsage]
                await anyio.sleep(0.01)  # the exporter's task has not started yet
            for _ in range(otlp_module.MAX_BATCH):
                tracer.start_span("s").end()
            await arrived.wait()
            for _ in range(5):
                tracer.start_span("late").end()
            release.set()
            while exporter._wake is first:  # noqa: ASYNC110  # pyright: ignore[reportPrivateUsage]
                await anyio.sleep(0.01)  # until the exporter waits again (a new event): no event says so
        assert (len(sent), len(exporter.buffer) + len(exporter.pending)) == (1, 5)
    assert [len(decode(body)) for body in sent] == [otlp_module.MAX_BATCH, 5]  # the rest goes out at shutdown


@pytest.mark.anyio
async def test_a_collector_that_is_down_costs_spans_and_one_warning_never_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def refuse(body: bytes) -> None:
        raise ConnectionRefusedError("refused")

    tracing = Tracing(settings(), sender=refuse)
    with caplog.at_level(logging.WARNING, "toolhub.tracing"):
        async with tracing.running():
            assert tracing.tracer is not None
            tracing.tracer.start_span("s").end()
    assert tracing.exporter is not None and tracing.exporter.failed == 1
    assert [r.getMessage() for r in caplog.records if r.name == "toolhub.tracing"] == [  # not other hubs' records
        "tracing: 1 spans not exported to http://127.0.0.1:9/v1/traces: refused (1 so far)"
    ]


def test_spans_past_the_queue_bound_are_dropped_and_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(otlp_module, "MAX_QUEUE", 2)
    exporter = OtlpExporter(settings(), {}, ("toolhub", "0"), lambda body: None)
    tracer = SpanRecorder(Sampling("always_on", 1.0), exporter.add)
    for _ in range(3):
        tracer.start_span("s").end()
    exporter.encode()
    assert (len(exporter.buffer), exporter.dropped) == (2, 1)


@pytest.mark.anyio
async def test_spans_go_to_a_grpc_collector_with_the_configured_headers() -> None:
    received: list[tuple[bytes, dict[str, str]]] = []

    def export(request: bytes, context: grpc.ServicerContext) -> bytes:
        received.append((request, dict(context.invocation_metadata())))  # pyright: ignore[reportArgumentType]
        return ExportTraceServiceResponse().SerializeToString()

    handler = grpc.method_handlers_generic_handler(
        "opentelemetry.proto.collector.trace.v1.TraceService", {"Export": grpc.unary_unary_rpc_method_handler(export)}
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        spec = OtelSpec(endpoint=f"http://127.0.0.1:{port}", protocol="grpc", headers={"X-Tenant": "t1"})
        found = tracing_settings(spec, {})
        assert found is not None
        tracing = Tracing(found)
        async with tracing.running():
            assert tracing.tracer is not None
            tracing.tracer.start_span("over grpc", kind=SpanKind.SERVER).end()
    finally:
        server.stop(None)
    [(body, metadata)] = received
    [span] = decode(body)
    assert (span.name, span.kind, metadata["x-tenant"]) == ("over grpc", "SERVER", "t1")


def test_the_queue_is_bounded_in_bytes_and_spans_past_it_are_dropped_and_counted() -> None:
    exporter = OtlpExporter(settings(), {}, ("toolhub", "0"), lambda body: None)
    tracer = SpanRecorder(Sampling("always_on", 1.0), exporter.add)
    big = otlp_module.MAX_QUEUE_BYTES // 500
    for _ in range(600):
        tracer.start_span("s", attributes={"gen_ai.input.messages": "x" * (big // 2), "more": "y" * (big // 2)}).end()
    exporter.encode()
    assert exporter.size == sum(map(len, exporter.buffer)) <= otlp_module.MAX_QUEUE_BYTES
    assert len(exporter.buffer) < 500 and exporter.dropped == 600 - len(exporter.buffer)


@pytest.mark.anyio
async def test_batches_are_cut_by_size_and_every_span_still_arrives() -> None:
    sent: list[bytes] = []
    exporter = OtlpExporter(settings(), {"service.name": "t"}, ("toolhub", "0"), sent.append)
    tracer = SpanRecorder(Sampling("always_on", 1.0), exporter.add)
    for _ in range(120):
        tracer.start_span("s", attributes={"a": "x" * 60_000}).end()
    await exporter.flush()
    assert len(sent) >= 2 and all(len(body) <= otlp_module.MAX_BATCH_BYTES + 100 for body in sent)
    assert sum(len(decode(body)) for body in sent) == 120 and exporter.size == 0


def test_equal_values_of_different_types_keep_their_types() -> None:
    """Encoded pairs of steady attributes are kept: `1`, `True` and `1.0` are equal keys of a dict."""
    tracer, ended = recorder()
    for value in (1, True, 1.0, "1"):
        tracer.start_span("s", attributes={"toolhub.stream": value, "toolhub.retry": value}).end()
    spans = decode(encode(ended, b"", b""))
    assert [type(s.attributes["toolhub.stream"]) for s in spans] == [int, bool, float, str]
    assert [type(s.attributes["toolhub.retry"]) for s in spans] == [int, bool, float, str]


def test_long_values_are_cut_on_a_character_boundary() -> None:
    tracer, ended = recorder()
    span = tracer.start_span("n" * 100_000, attributes={"s": "é" * 100_000, "l": ["a" * 100_000]})
    span.add_event("e", {"k": "z" * 100_000})
    span.set_status(Status(StatusCode.ERROR, "boom" * 50_000))
    span.end()
    raw = ExportTraceServiceRequest.FromString(encode(ended, b"", b"")).resource_spans[0].scope_spans[0].spans[0]
    limit = proto.MAX_VALUE_BYTES
    attrs = {kv.key: kv.value for kv in raw.attributes}
    assert attrs["s"].string_value == "é" * (limit // 2)
    assert attrs["l"].array_value.values[0].string_value == "a" * limit
    assert (len(raw.name), len(raw.status.message), len(raw.events[0].attributes[0].value.string_value)) == (
        limit, limit, limit,
    )  # fmt: skip
    assert len(encode(ended, b"", b"")) < 6 * limit  # five cut values: about 800 kB before


def test_a_span_whose_parent_came_from_an_inbound_traceparent_is_flagged_remote() -> None:
    tracer, ended = recorder()
    server = tracer.start_span("server", remote(True), SpanKind.SERVER)
    tracer.start_span("child", set_span_in_context(server)).end()
    server.end()
    tracer.start_span("root").end()
    spans = ExportTraceServiceRequest.FromString(encode(ended, b"", b"")).resource_spans[0].scope_spans[0].spans
    assert {s.name: s.flags for s in spans} == {"child": 0x101, "server": 0x301, "root": 0x101}
