"""MCP sessions belong to the key that opened them; the transports' own errors are JSON-RPC; ids stay out of logs."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

import httpx2
import mcp_types as types
import pytest
from mcp.server import Server
from uvicorn.logging import AccessFormatter

from hub.accounts.auth import Principal
from hub.mcp.guards import RedactSessionIds
from tests.mcp.conftest import hub_app, keyed_hub_app, running, streamable_app, tool_server
from tests.support.servers import serve_app

KEYS = {"sk-a": Principal(key_id="a"), "sk-b": Principal(key_id="b")}
VERSION = "2025-06-18"
CLIENT = {"name": "t", "version": "1"}
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": CLIENT}}  # fmt: skip
LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}


def headers(key: str, session: str | None = None, **extra: str) -> dict[str, str]:
    found = {"Authorization": f"Bearer {key}", "Accept": "application/json, text/event-stream",
             "Content-Type": "application/json", "MCP-Protocol-Version": VERSION, **extra}  # fmt: skip
    return {**found, "Mcp-Session-Id": session} if session else found


def open_session(url: str, key: str) -> str:
    opened = httpx2.post(url, headers=headers(key), json=INITIALIZE)
    assert opened.status_code == 200, opened.text
    session = opened.headers["mcp-session-id"]
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert httpx2.post(url, headers=headers(key, session), json=initialized).status_code == 202
    return session


def jsonrpc_error(response: httpx2.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert (body["jsonrpc"], body["id"]) == ("2.0", None)
    return body["error"]


@pytest.mark.parametrize("path", ["/mcp", "/mcp/tool"])
def test_another_key_cannot_use_or_end_a_session_it_did_not_open(path: str) -> None:
    with running(keyed_hub_app({"tool": tool_server()}, KEYS)) as base:
        url = f"{base}{path}"
        session = open_session(url, "sk-a")
        used = httpx2.post(url, headers=headers("sk-b", session), json=LIST)
        listened = httpx2.get(url, headers=headers("sk-b", session, Accept="text/event-stream"))
        ended = httpx2.delete(url, headers=headers("sk-b", session))
        unknown = httpx2.post(url, headers=headers("sk-b", "0" * 32), json=LIST)
        still = httpx2.post(url, headers=headers("sk-a", session), json=LIST)
        own_end = httpx2.delete(url, headers=headers("sk-a", session))
        after = httpx2.post(url, headers=headers("sk-a", session), json=LIST)
    assert used.status_code == listened.status_code == ended.status_code == unknown.status_code == 404
    assert jsonrpc_error(used) == jsonrpc_error(ended) == jsonrpc_error(unknown)  # as if it did not exist
    assert still.status_code == 200 and '"name":"' in still.text
    assert own_end.status_code == 200 and after.status_code == 404


def test_an_sse_session_takes_messages_only_from_its_own_key() -> None:
    with running(keyed_hub_app({"tool": tool_server()}, KEYS)) as base:
        with httpx2.stream("GET", f"{base}/sse", headers={"Authorization": "Bearer sk-a"}) as stream:
            lines = stream.iter_lines()  # kept referenced: a collected generator would close the stream
            path = next(line for line in lines if line.startswith("data:")).removeprefix("data:").strip()
            foreign = httpx2.post(f"{base}{path}", headers=headers("sk-b"), json=INITIALIZE)
            own = httpx2.post(f"{base}{path}", headers=headers("sk-a"), json=INITIALIZE)
    assert foreign.status_code == 404
    assert jsonrpc_error(foreign) == {"code": -32600, "message": "Could not find session"}
    assert own.status_code == 202


def test_the_transports_plain_text_errors_are_json_rpc_errors() -> None:
    with running(keyed_hub_app({"tool": tool_server()}, KEYS)) as base:
        wrong_type = httpx2.post(f"{base}/mcp", headers=headers("sk-a", **{"Content-Type": "text/plain"}),
                                 content=b"{}")  # fmt: skip
        no_session = httpx2.post(f"{base}/sse/messages/", headers=headers("sk-a"), json=INITIALIZE)
        bad_session = httpx2.post(f"{base}/sse/messages/?session_id=nope", headers=headers("sk-a"), json=INITIALIZE)
        posted_sse = httpx2.post(f"{base}/sse", headers=headers("sk-a"), json=INITIALIZE)
        got_messages = httpx2.get(f"{base}/sse/messages/", headers=headers("sk-a"))
        no_accept = httpx2.get(f"{base}/mcp", headers={**headers("sk-a"), "Accept": "application/json"})
    assert wrong_type.status_code == 400
    assert jsonrpc_error(wrong_type) == {"code": -32600, "message": "Invalid Content-Type header"}
    assert (no_session.status_code, jsonrpc_error(no_session)["message"]) == (400, "session_id is required")
    assert (bad_session.status_code, jsonrpc_error(bad_session)["message"]) == (400, "Invalid session ID")
    assert (posted_sse.status_code, jsonrpc_error(posted_sse)["message"]) == (405, "Method Not Allowed")
    assert (got_messages.status_code, got_messages.headers["allow"]) == (405, "POST")
    assert jsonrpc_error(got_messages)["message"] == "Method Not Allowed"
    assert no_accept.status_code >= 400 and jsonrpc_error(no_accept)["code"] == -32600


def test_session_ids_are_not_logged_at_info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: the SDK's, uvicorn's and the hub's own
    with running(keyed_hub_app({"tool": tool_server()}, KEYS)) as base:
        session = open_session(f"{base}/mcp", "sk-a")
        httpx2.post(f"{base}/mcp", headers=headers("sk-b", session), json=LIST)
        httpx2.delete(f"{base}/mcp", headers=headers("sk-a", session))
        httpx2.post(f"{base}/mcp", headers=headers("sk-a", "f" * 32), json=LIST)
        with httpx2.stream("GET", f"{base}/sse", headers={"Authorization": "Bearer sk-a"}) as stream:
            lines = stream.iter_lines()  # kept referenced: a collected generator would close the stream
            path = next(line for line in lines if line.startswith("data:")).removeprefix("data:").strip()
            httpx2.post(f"{base}{path}", headers=headers("sk-b"), json=INITIALIZE)  # the SDK logs a UUID
    sse_session = str(UUID(path.split("session_id=")[1]))
    ids = (session, "f" * 32, sse_session, sse_session.replace("-", ""))
    assert any(session in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)  # still seen there
    hub = [r for r in caplog.records if not r.name.startswith("httpx2")]  # not this test's own client
    loud = [f"{r.name}: {r.getMessage()}" for r in hub if r.levelno >= logging.INFO]
    assert any("<session id>" in line for line in loud)  # the lines are kept, without the id
    assert [line for line in loud if any(i in line for i in ids)] == []


def test_a_session_id_in_an_argument_of_any_kind_is_redacted() -> None:
    session = UUID("9f2c" * 8)
    args = (session, [session.hex], 404, 1.5, None)
    record = logging.LogRecord("mcp.server.sse", logging.WARNING, __file__, 1, "%s %s %d %.1f %s", args, None)
    assert RedactSessionIds().filter(record)
    assert record.getMessage() == "<session id> ['<session id>'] 404 1.5 None"


def test_the_hubs_own_mcp_logger_redacts_session_ids(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="toolhub.mcp")
    with running(keyed_hub_app({"tool": tool_server()}, KEYS)):
        logging.getLogger("toolhub.mcp").info("Session %s idle timeout", "ab" * 16)  # as hub.mcp.lean logs it
    assert "Session <session id> idle timeout" in caplog.messages


def test_the_access_log_shows_sse_paths_without_their_session_id() -> None:
    session = "9f2c" * 8
    path = f"/sse/messages/?session_id={session}"
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "POST", path, "1.1", 202), None)  # fmt: skip
    assert RedactSessionIds().filter(record)
    line = AccessFormatter("%(message)s", use_colors=False).format(record)
    assert line == '127.0.0.1:5000 - "POST /sse/messages/?session_id=<session id> HTTP/1.1" 202'


def test_an_http_upstreams_session_id_is_not_logged_at_info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mcp.client.streamable_http")
    upstream = Server("web", on_list_tools=_no_tools)
    with serve_app(streamable_app(upstream)) as web, running(hub_app({"web": {"url": f"{web}/mcp"}})):
        pass
    received = [r.getMessage() for r in caplog.records if r.name == "mcp.client.streamable_http"]
    assert "Received session ID: <session id>" in received  # the SDK's line, without the id


def test_a_session_id_of_any_form_after_the_sdks_words_is_redacted() -> None:
    record = logging.LogRecord("mcp.client.streamable_http", logging.INFO, __file__, 1,
                               "Received session ID: not-hex.42", None, None)  # fmt: skip
    assert RedactSessionIds().filter(record)
    assert record.getMessage() == "Received session ID: <session id>"


async def _no_tools(ctx: Any, params: Any) -> types.ListToolsResult:
    return types.ListToolsResult(tools=[])
