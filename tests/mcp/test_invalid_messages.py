"""A body that is JSON but no JSON-RPC message MCP takes is answered -32600 Invalid Request on `/mcp` and `/sse`
(`hub.mcp.guards.refusal`): not the SDK's -32602 with a pydantic dump, not a parse error, and not 202 for a request
whose id is no string or integer (the SDK took it for a notification: the request was never answered)."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import mcp_types as types
import pytest

from tests.mcp.conftest import hub_app, running, tool_server
from tests.mcp.test_lean import headers, open_session
from tests.mcp.test_lean_lane import manager_of

TOOL_CALL = {"name": "tool__echo", "arguments": {"text": "x"}}
INVALID: dict[str, Any] = {
    "jsonrpc 1.0": {"jsonrpc": "1.0", "id": 1, "method": "ping"},
    "no jsonrpc": {"id": 1, "method": "ping"},
    "method no string": {"jsonrpc": "2.0", "id": 1, "method": 5},
    "a string": "ping",
    "a number": 5,
    "a batch": [{"jsonrpc": "2.0", "id": 1, "method": "ping"}],
    "an empty batch": [],
    "a float id": {"jsonrpc": "2.0", "id": 2.0, "method": "tools/call", "params": TOOL_CALL},
    "a fractional id": {"jsonrpc": "2.0", "id": 1.5, "method": "ping"},
    "an object id": {"jsonrpc": "2.0", "id": {"n": 1}, "method": "tools/call", "params": TOOL_CALL},
    "a null id": {"jsonrpc": "2.0", "id": None, "method": "tools/call", "params": TOOL_CALL},
    "a boolean id": {"jsonrpc": "2.0", "id": True, "method": "ping"},
    "no method, no result": {"jsonrpc": "2.0", "id": 1},
}
EXPECTED = {"a batch": "Invalid Request: batches are not supported",
            "a float id": 'Invalid Request: "id" must be a string or an integer',
            "jsonrpc 1.0": 'Invalid Request: "jsonrpc" must be "2.0"'}  # fmt: skip


def refused(response: httpx2.Response) -> dict[str, Any]:
    """The error of a 400 JSON-RPC answer with a null id."""
    body = response.json()
    assert (response.status_code, body["jsonrpc"], body["id"]) == (400, "2.0", None), response.text
    return body["error"]


def check(refusals: dict[str, dict[str, Any]]) -> None:
    assert {name: error["code"] for name, error in refusals.items()} == dict.fromkeys(INVALID, types.INVALID_REQUEST)
    for name, message in EXPECTED.items():
        assert refusals[name]["message"] == message
    assert all(len(error["message"]) < 80 for error in refusals.values())  # short: no pydantic dump


@pytest.mark.parametrize("capabilities", [{}, {"sampling": {}}], ids=["plain", "interactive"])
def test_invalid_messages_on_mcp_are_invalid_requests(capabilities: dict[str, Any]) -> None:
    with running(hub_app({"tool": tool_server()})) as base:
        url = f"{base}/mcp"
        session = open_session(url, capabilities)
        refusals = {name: refused(httpx2.post(url, headers=headers(session), json=body))
                    for name, body in INVALID.items()}  # fmt: skip
        params = httpx2.post(url, headers=headers(session), json={"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                                                                   "params": ["x"]})  # fmt: skip
        not_json = httpx2.post(url, headers=headers(session), content=b'{"jsonrpc": ')
        still = httpx2.post(url, headers=headers(session), json={"jsonrpc": "2.0", "id": 6, "method": "ping"})
    check(refusals)
    assert params.status_code == 400
    error = {"code": types.INVALID_PARAMS, "message": 'Invalid params: "params" must be an object'}
    assert params.json() == {"jsonrpc": "2.0", "id": 5, "error": error}  # the id is known: it is answered
    assert not_json.status_code == 400 and not_json.json()["error"]["code"] == types.PARSE_ERROR
    assert still.status_code == 200


def test_an_invalid_message_opening_a_session_opens_none() -> None:
    app = hub_app({"tool": tool_server()})
    with running(app) as base:
        body = {"jsonrpc": "2.0", "id": 1.0, "method": "initialize", "params": {}}
        opening = httpx2.post(f"{base}/mcp", headers=headers(), json=body)
        open_sessions = dict(manager_of(app)._server_instances)  # pyright: ignore[reportPrivateUsage]
        deadline = time.monotonic() + 5  # discarded once the refusal is sent: the server's thread may lag the client
        while open_sessions and time.monotonic() < deadline:
            time.sleep(0.01)
            open_sessions = dict(manager_of(app)._server_instances)  # pyright: ignore[reportPrivateUsage]
    assert refused(opening) == {"code": types.INVALID_REQUEST, "message": EXPECTED["a float id"]}
    assert open_sessions == {}


def test_an_invalid_message_keeps_the_sdks_header_refusals() -> None:
    with running(hub_app({"tool": tool_server()})) as base:
        url = f"{base}/mcp"
        session = open_session(url, {})
        body = INVALID["a float id"]
        no_stream = httpx2.post(url, headers={**headers(session), "Accept": "application/json"}, json=body)
        foreign = httpx2.post(url, headers={**headers(session), "Origin": "http://evil.example"}, json=body)
    assert (no_stream.status_code, foreign.status_code) == (406, 403)


@contextlib.contextmanager
def sse_messages(base: str) -> Iterator[str]:
    """An open `/sse` session's message URL."""
    with httpx2.stream("GET", f"{base}/sse", headers=headers(), timeout=30) as stream:
        lines = stream.iter_lines()  # kept referenced: a collected generator would close the stream
        yield base + next(line for line in lines if line.startswith("data:")).removeprefix("data:").strip()


def test_invalid_messages_on_sse_are_invalid_requests_and_bad_json_a_parse_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    with running(hub_app({"tool": tool_server()})) as base, sse_messages(base) as url:
        refusals = {name: refused(httpx2.post(url, headers=headers(), json=body)) for name, body in INVALID.items()}
        not_json = httpx2.post(url, headers=headers(), content=b'{"jsonrpc": ')
        ping = httpx2.post(url, headers=headers(), json={"jsonrpc": "2.0", "id": 6, "method": "ping"})
        foreign = httpx2.post(url.replace("session_id=", "session_id=0"), headers=headers(), json=INVALID["a null id"])
    check(refusals)
    assert refused(not_json) == {"code": types.PARSE_ERROR, "message": "Could not parse message"}
    assert ping.status_code == 202
    assert foreign.status_code == 400 and refused(foreign)["message"] == "Invalid session ID"  # its checks come first
    loud = [r for r in caplog.records if r.name.startswith("mcp") and r.levelno >= logging.INFO]
    assert [r.getMessage() for r in loud if r.exc_info or "parse" in r.getMessage()] == []  # nothing to flood with
