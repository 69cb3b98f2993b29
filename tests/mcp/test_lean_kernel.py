"""A plain request on `/mcp` is handled in its own HTTP task (`hub.mcp.lean.Kernel`), with the dispatcher's rules."""

from __future__ import annotations

import threading
from typing import Any

import httpx2
import pytest
from starlette.applications import Starlette

from hub.mcp.lean import LeanTransport
from tests.mcp.conftest import eventually, hub_app, running, script_server, time_server
from tests.mcp.test_lean import call, headers, kind, open_session


def transport_of(app: Starlette, session: str) -> LeanTransport:
    found = app.state.hub.extras["mcp_http"].aggregated.manager._server_instances[session]
    assert isinstance(found, LeanTransport)
    return found


def test_plain_calls_are_answered_by_the_kernel_with_the_sdk_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_streams(*args: Any) -> None:
        raise AssertionError("answered through the session's streams")

    app = hub_app({"time": time_server()})
    with running(app) as base:
        url = f"{base}/mcp"
        session = open_session(url, {})
        assert transport_of(app, session).kernel is not None
        # this session's transport only: other hubs served in this process (session fixtures) keep theirs
        monkeypatch.setattr(transport_of(app, session), "_through_streams", no_streams)
        answered = call(url, session, 2)
        params = {"name": "time__get_current_time", "arguments": "not an object"}  # the runner's ValidationError
        bad_params = httpx2.post(url, headers=headers(session), json={"jsonrpc": "2.0", "id": 4, "method": "tools/call",
                                                                       "params": params})  # fmt: skip
    assert kind(answered) == "application/json" and answered.json()["id"] == 2
    assert '"timezone"' in answered.json()["result"]["content"][0]["text"]
    assert kind(bad_params) == "application/json"
    assert bad_params.json() == {
        "jsonrpc": "2.0",
        "id": 4,
        "error": {"code": -32602, "message": "Invalid request parameters", "data": ""},
    }


def test_a_cancelled_plain_call_is_answered_request_cancelled_and_leaves_nothing_in_flight() -> None:
    app = hub_app({"stuck": script_server("raw_server.py", "stuck")})
    answers: list[httpx2.Response] = []
    with running(app) as base:
        url = f"{base}/mcp"
        session = open_session(url, {})
        kernel = transport_of(app, session).kernel
        assert kernel is not None
        in_flight: dict[Any, Any] = kernel.dispatcher._in_flight
        caller = threading.Thread(target=lambda: answers.append(call(url, session, 7, tool="stuck__echo")))
        caller.start()
        eventually(lambda: 7 in in_flight, what="the call in flight")
        cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7}}
        assert httpx2.post(url, headers=headers(session), json=cancel).status_code == 202
        caller.join(30)
        assert not in_flight
    assert answers[0].json() == {"jsonrpc": "2.0", "id": 7, "error": {"code": -32800, "message": "Request cancelled"}}


def test_a_request_with_a_null_id_on_a_plain_session_gets_an_answer() -> None:
    """`"id": null` validates as a notification: it once fell out of the plain path unanswered (uvicorn: a bare 500),
    then got the SDK's 202 (never answered); it is an invalid request (tests/mcp/test_invalid_messages.py)."""
    app = hub_app({"time": time_server()})
    with running(app) as base:
        url = f"{base}/mcp"
        session = open_session(url, {})
        answered = httpx2.post(url, headers=headers(session), json={"jsonrpc": "2.0", "id": None, "method": "ping"})
    assert answered.status_code == 400 and answered.json()["error"]["code"] == -32600
