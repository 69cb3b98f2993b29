"""`TracingMiddleware` in memory (httpx2's ASGI transport): what the server span records for each kind of answer."""

from __future__ import annotations

import logging
import threading
from typing import Any

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub.ops.tracing import OtelSpec, tracing_settings
from hub.ops.tracing.middleware import TracingMiddleware
from hub.ops.tracing.setup import Tracing
from hub.ops.tracing.tracer import RecordedSpan, Sampling, SpanRecorder
from tests.ops.tracing_support import PARENT_ID, TRACE_ID


async def item(request: Request) -> Response:
    if request.path_params["name"] == "boom":
        raise RuntimeError("boom")
    status = int(request.query_params.get("status", "200"))
    return JSONResponse({"ok": True}, status, headers={"x-toolhub-overhead-duration-ms": "0.250"})


def traced_app(capture: bool = False) -> tuple[TracingMiddleware, Tracing, list[RecordedSpan]]:
    settings = tracing_settings(OtelSpec(endpoint="http://127.0.0.1:9", capture_content=capture), {})
    assert settings is not None
    tracing = Tracing(settings)
    ended: list[RecordedSpan] = []
    tracing.tracer = SpanRecorder(Sampling(settings.sampler, settings.sample_ratio), ended.append)
    app = Starlette(routes=[Route("/items/{name}", item)])
    return TracingMiddleware(app, tracing), tracing, ended


def own_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The records logged on this test's thread (the in-memory app runs there): hubs served by session fixtures log
    from their own threads into the same capture."""
    return [r for r in caplog.records if r.thread == threading.get_ident()]


async def get(app: Any, path: str, headers: dict[str, str] | None = None) -> httpx2.Response:
    transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx2.AsyncClient(transport=transport, base_url="http://hub") as client:
        return await client.get(path, headers=headers)


@pytest.mark.anyio
async def test_the_server_span_names_the_route_and_records_status_and_overhead() -> None:
    app, _, ended = traced_app()
    assert (await get(app, "/items/a?status=201")).status_code == 201
    [span] = ended
    assert (span.name, span.kind.name, span.parent_id) == ("GET /items/{name}", "SERVER", 0)
    assert span.attributes == {"http.request.method": "GET", "url.path": "/items/a", "url.scheme": "http",
                               "client.address": "127.0.0.1", "toolhub.overhead_ms": 0.25,
                               "http.route": "/items/{name}", "http.response.status_code": 201}  # fmt: skip
    assert span.status.status_code.name == "UNSET"


@pytest.mark.anyio
async def test_a_5xx_answer_is_an_error_a_4xx_is_not_and_an_unknown_path_keeps_the_method_as_name() -> None:
    app, _, ended = traced_app()
    await get(app, "/items/a?status=503")
    await get(app, "/items/a?status=404")
    await get(app, "/nowhere")
    assert [(s.name, s.status.status_code.name) for s in ended] == [
        ("GET /items/{name}", "ERROR"), ("GET /items/{name}", "UNSET"), ("GET", "UNSET"),
    ]  # fmt: skip


@pytest.mark.anyio
async def test_an_exception_through_the_middleware_ends_the_span_as_failed() -> None:
    app, _, ended = traced_app(capture=True)
    assert (await get(app, "/items/boom")).status_code == 500
    [span] = ended
    assert span.attributes["error.type"] == "RuntimeError"
    assert [event[0] for event in span.events] == ["exception"]
    assert span.status.description == "RuntimeError: boom"


@pytest.mark.anyio
async def test_without_capture_content_a_crash_exports_its_type_only_not_its_message_or_stack() -> None:
    app, _, ended = traced_app()
    assert (await get(app, "/items/boom")).status_code == 500
    [span] = ended
    assert (span.attributes["error.type"], span.status.status_code.name) == ("RuntimeError", "ERROR")
    assert (span.events, span.status.description) == ([], None)


@pytest.mark.anyio
async def test_a_malformed_traceparent_starts_a_new_trace() -> None:
    app, _, ended = traced_app()
    await get(app, "/items/a", {"traceparent": "00-zz-yy-01"})
    await get(app, "/items/a", {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01", "tracestate": "vendor=1"})
    fresh, continued = ended
    assert fresh.parent_id == 0 and f"{fresh.context.trace_id:032x}" != TRACE_ID
    assert (f"{continued.context.trace_id:032x}", f"{continued.parent_id:016x}") == (TRACE_ID, PARENT_ID)
    assert continued.context.trace_state.to_header() == "vendor=1"


@pytest.mark.parametrize(("members", "kept"), [
    ([f"k{i}=v" for i in range(40)], [f"k{i}=v" for i in range(32)]),  # at most 32 members
    ([f"k{i}={'v' * 40}" for i in range(20)], [f"k{i}={'v' * 40}" for i in range(11)]),  # at most 512 characters
    (["a=1", f"big={'v' * 300}", "b=2"] + [f"k{i}={'v' * 60}" for i in range(10)],  # long members go first
     ["a=1", "b=2"] + [f"k{i}={'v' * 60}" for i in range(7)]),
    ([f"k{i}={'v' * 256}" for i in range(32)], []),
])  # fmt: skip
@pytest.mark.anyio
async def test_an_incoming_tracestate_is_cut_to_the_w3c_limits(
    members: list[str], kept: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    app, _, ended = traced_app()
    await get(app, "/items/a", {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01", "tracestate": ",".join(members)})
    [span] = ended
    state = span.context.trace_state
    assert (state.to_header() if state else "") == ",".join(kept)
    assert len(",".join(kept)) <= 512 and own_records(caplog) == []  # no warning a caller could repeat per request


@pytest.mark.anyio
async def test_an_oversized_traceparent_starts_a_new_trace_without_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    app, _, ended = traced_app()
    await get(app, "/items/a", {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01" + " " * 10_000})
    [span] = ended
    assert span.parent_id == 0 and own_records(caplog) == []


@pytest.mark.anyio
async def test_before_the_lifespan_opened_it_requests_pass_through_untraced() -> None:
    app, tracing, ended = traced_app()
    tracing.tracer = None
    assert (await get(app, "/items/a")).status_code == 200
    assert ended == []
