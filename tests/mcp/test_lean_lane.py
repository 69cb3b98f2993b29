"""A POST on an open `/mcp` session takes the manager's short way (`hub.mcp.lean.LeanSessionManager.handle_request`):
the SDK's own answers, bytes and refusals, without the SDK's outer layers."""

from __future__ import annotations

import socket
from typing import Any

import httpx2
import mcp_types as types
import pytest

from hub.mcp.lean import LeanSessionManager
from tests.mcp.conftest import hub_app, running, time_server
from tests.mcp.test_lean import call, headers, kind, open_session


def manager_of(app: Any) -> LeanSessionManager:
    return app.state.hub.extras["mcp_http"].aggregated.manager


def test_a_plain_call_on_an_open_session_skips_the_sdks_outer_layers_and_is_answered_as_the_sdk_would(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def outer_layers(*args: Any) -> None:
        raise AssertionError("went through the SDK's body limit and manager")

    app = hub_app({"time": time_server()})
    with running(app) as base:
        url = f"{base}/mcp"
        plain = open_session(url, {})
        asking = open_session(url, {"sampling": {}})
        monkeypatch.setattr(manager_of(app), "asgi_app", outer_layers)  # this app's manager only
        answered = call(url, plain, 2)
        streamed = call(url, asking, 3)
    assert answered.status_code == 200 and streamed.status_code == 200
    assert kind(answered) == "application/json" and kind(streamed) == "text/event-stream"
    as_sdk_writes = types.JSONRPCResponse.model_validate_json(answered.content).model_dump_json(
        by_alias=True, exclude_unset=True
    )
    assert answered.content == as_sdk_writes.encode()
    own = [(name, value) for name, value in answered.headers.items() if name not in ("date", "server", "x-request-id")]
    assert own == [("content-type", "application/json"), ("mcp-session-id", plain),
                   ("content-length", str(len(answered.content)))]  # fmt: skip


def test_the_short_way_keeps_the_sdks_refusals_and_its_answers_to_what_is_no_plain_request() -> None:
    app = hub_app({"time": time_server()})
    with running(app) as base:
        url = f"{base}/mcp"
        session = open_session(url, {})
        manager_of(app).asgi_app.max_body_size = 10_000  # this app's manager only
        foreign_origin = call_with(url, session, {"Origin": "http://evil.example"})
        foreign_host = call_with(url, session, {"Host": "evil.example"})
        no_json = call_with(url, session, {"Accept": "text/event-stream"})
        too_large = httpx2.post(url, headers=headers(session), content=b'{"pad": "' + b"x" * 20_000 + b'"}')
        float_id = httpx2.post(url, headers=headers(session), json={"jsonrpc": "2.0", "id": 1.0, "method": "ping"})
        bad_params = httpx2.post(url, headers=headers(session), json={"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                                                                       "params": ["x"]})  # fmt: skip
        modern = call_with(url, session, {"MCP-Protocol-Version": "2026-07-28"})
        no_stream = call_with(url, session, {"Accept": "application/json"})  # the stateful SDK asks for both
        answer = {"jsonrpc": "2.0", "id": 8, "method": "tools/call", "error": {"code": -1, "message": "x"},
                  "params": {"name": "time__get_current_time", "arguments": {"timezone": "UTC"}}}  # fmt: skip
        error_too = httpx2.post(url, headers=headers(session), json=answer)
    assert (foreign_origin.status_code, foreign_host.status_code, no_json.status_code) == (403, 421, 406)
    assert no_stream.status_code == 406
    assert error_too.status_code == 202  # the SDK's adapter takes it as the client's error answer, run nothing
    assert too_large.status_code == 413
    assert float_id.status_code == 400 and float_id.json()["error"]["code"] == types.INVALID_REQUEST  # not the
    # SDK's 202: its adapter takes it for a notification, never answered (tests/mcp/test_invalid_messages.py)
    assert bad_params.status_code == 400 and bad_params.json()["error"]["code"] == types.INVALID_PARAMS
    assert modern.status_code == 400  # the 2026 era's own refusal of a request without its `_meta`, not a session


def call_with(url: str, session: str, extra: dict[str, str]) -> httpx2.Response:
    body = {"jsonrpc": "2.0", "id": 9, "method": "tools/call",
            "params": {"name": "time__get_current_time", "arguments": {"timezone": "UTC"}}}  # fmt: skip
    return httpx2.post(url, headers={**headers(session), **extra}, json=body, timeout=30)


def test_a_body_declared_over_the_limit_is_refused_before_it_is_read() -> None:
    app = hub_app({"time": time_server()})
    with running(app) as base:
        session = open_session(f"{base}/mcp", {})
        manager_of(app).asgi_app.max_body_size = 10_000  # this app's manager only
        sent = {**headers(session), "Host": "127.0.0.1", "Content-Length": "20000"}
        head = "POST /mcp HTTP/1.1\r\n" + "".join(f"{name}: {value}\r\n" for name, value in sent.items()) + "\r\n"
        address = httpx2.URL(base)
        with socket.create_connection((address.host, address.port or 80), timeout=10) as client:
            client.sendall(head.encode() + b'{"pad": "')  # the rest never comes: the SDK answers from the header
            status = client.recv(100).split(b"\r\n")[0]
    assert status == b"HTTP/1.1 413 Request Entity Too Large"
