"""How many MCP sessions a key and the process may hold (security QA finding 1): a key that may use no server opens
none, a key past its limit gets 429 naming it, a full hub ends the least recently used idle session of the biggest
holder instead of refusing everyone, and `/mcp`, `/mcp/<server>` and `/sse` count together. Real HTTP against the
served hub, with small limits."""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx2
import pytest
from mcp.shared.exceptions import MCPError
from starlette.applications import Starlette
from starlette.requests import Request

from hub.accounts.auth import MasterKeyAuth, Principal
from hub.app import create_app
from hub.config import parse_config
from hub.mcp.admission import SESSION_IDLE_TIMEOUT
from hub.mcp.http import McpHttp, McpSettings, mcp_extension, mcp_routes
from hub.state import HubState
from tests.mcp.conftest import MASTER_KEY, FakeKeys, mcp_client, running, tool_server

VERSION = "2025-11-25"
HELLO = {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": HELLO}
PING = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
KEYS = {
    "sk-a": Principal(key_id="a"),
    "sk-b": Principal(key_id="b"),
    "sk-tool": Principal(key_id="tool", mcp_servers=frozenset({"tool"})),
    "sk-none": Principal(key_id="none", mcp_servers=frozenset({"other_srv"})),  # QA's `nomcp`: names no served server
    "sk-tools-elsewhere": Principal(key_id="elsewhere", mcp_tools=frozenset({"other_srv/*"})),
}


def limited_app(**limits: Any) -> Starlette:
    """The hub with one stdio upstream, the test keys and the given `McpSettings` limits."""
    config = parse_config({"general_settings": {"master_key": MASTER_KEY}, "mcp_servers": {"tool": tool_server()}}, {})

    @contextlib.asynccontextmanager
    async def with_keys(state: HubState) -> AsyncIterator[None]:
        state.auth = MasterKeyAuth(MASTER_KEY, FakeKeys(KEYS))
        yield

    return create_app(config, extensions=[mcp_extension(McpSettings(**limits)), with_keys], routes=mcp_routes())


def mcp_http(app: Starlette) -> McpHttp:
    return app.state.hub.extras["mcp_http"]


BOTH = "application/json, text/event-stream"


def headers(key: str, session: str | None = None, accept: str = BOTH) -> dict[str, str]:
    found = {"Authorization": f"Bearer {key}", "Accept": accept, "MCP-Protocol-Version": VERSION}
    return {**found, "Mcp-Session-Id": session} if session else found


def initialize(url: str, key: str) -> httpx2.Response:
    return httpx2.post(url, headers=headers(key), json=INITIALIZE)


def open_session(url: str, key: str) -> str:
    opened = initialize(url, key)
    assert opened.status_code == 200, opened.text
    return opened.headers["mcp-session-id"]


def ping(url: str, key: str, session: str) -> int:
    return httpx2.post(url, headers=headers(key, session), json=PING).status_code


def jsonrpc_error(response: httpx2.Response, request_id: int | None = None) -> dict[str, Any]:
    """The JSON-RPC error of a refusal, which answers the refused request's id (null for a GET: it has none)."""
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert (body["jsonrpc"], body["id"]) == ("2.0", request_id)
    return body["error"]


def wait_until(predicate: Any, what: str, limit: float = 10) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@contextlib.contextmanager
def listening(url: str, key: str, session: str | None = None) -> Iterator[httpx2.Response]:
    """An open event stream: the session's GET stream on `/mcp`, or a legacy `/sse` session (no `session`)."""
    with httpx2.Client(timeout=httpx2.Timeout(10, read=None)) as client:
        with client.stream("GET", url, headers=headers(key, session, accept="text/event-stream")) as response:
            yield response


def test_a_key_that_may_use_no_server_cannot_open_a_session() -> None:
    app = limited_app()
    with running(app) as base:
        refused = {key: initialize(f"{base}/mcp", key) for key in ("sk-none", "sk-tools-elsewhere")}
        sse = httpx2.get(f"{base}/sse", headers=headers("sk-none", accept="text/event-stream"))
        held = len(mcp_http(app).ledger)
        allowed = initialize(f"{base}/mcp", "sk-tool")
    for response, request_id in [*((r, INITIALIZE["id"]) for r in refused.values()), (sse, None)]:
        assert response.status_code == 403
        error = jsonrpc_error(response, request_id)
        assert error["code"] == -32600
        assert "may use none of this hub's MCP servers" in error["message"]
        assert "mcp-session-id" not in response.headers
    assert held == 0
    assert allowed.status_code == 200


def test_a_key_past_its_limit_gets_429_naming_it_while_other_keys_and_the_master_key_get_in() -> None:
    with running(limited_app(max_sessions_per_key=2)) as base:
        url = f"{base}/mcp"
        first, _ = open_session(url, "sk-a"), open_session(url, "sk-a")
        third = initialize(url, "sk-a")
        other = initialize(url, "sk-b")
        master = [initialize(url, MASTER_KEY).status_code for _ in range(3)]  # exempt from the per-key limit
        assert httpx2.delete(url, headers=headers("sk-a", first)).status_code == 200
        after_delete = initialize(url, "sk-a")
    assert third.status_code == 429
    error = jsonrpc_error(third, INITIALIZE["id"])
    assert "max_sessions_per_key = 2" in error["message"]
    assert error["data"] == {"limit": 2, "open": 2, "scope": "key"}
    assert other.status_code == 200
    assert master == [200, 200, 200]
    assert after_delete.status_code == 200


def test_the_official_client_sees_the_limit_in_its_error() -> None:
    async def connect(url: str) -> None:
        async with mcp_client(url, "sk-a"):
            pass

    with running(limited_app(max_sessions_per_key=1)) as base:
        open_session(f"{base}/mcp", "sk-a")
        with pytest.RaisesGroup(MCPError, flatten_subgroups=True) as refused:
            anyio.run(connect, f"{base}/mcp")
    error = refused.value.exceptions[0]
    while isinstance(error, BaseExceptionGroup):  # pyright: ignore[reportUnnecessaryIsInstance]
        error = error.exceptions[0]  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    assert isinstance(error, MCPError)
    assert "max_sessions_per_key = 1" in error.error.message


def test_mcp_the_per_server_endpoints_and_sse_count_together() -> None:
    app = limited_app(max_sessions_per_key=2)
    with running(app) as base:
        ledger = mcp_http(app).ledger
        with listening(f"{base}/sse", "sk-a") as sse:
            assert sse.status_code == 200
            open_session(f"{base}/mcp/tool", "sk-a")
            on_mcp = initialize(f"{base}/mcp", "sk-a")
            second_sse = httpx2.get(f"{base}/sse", headers=headers("sk-a", accept="text/event-stream"))
        wait_until(lambda: ledger.held_by("key:a") == 1, "the SSE session to end")
        after_sse = initialize(f"{base}/mcp", "sk-a")
    assert on_mcp.status_code == 429
    assert second_sse.status_code == 429
    assert jsonrpc_error(second_sse)["data"]["limit"] == 2
    assert after_sse.status_code == 200


def test_a_full_hub_ends_the_least_recently_used_idle_session_of_the_biggest_holder() -> None:
    with running(limited_app(max_sessions=3, max_sessions_per_key=10)) as base:
        url = f"{base}/mcp"
        b1 = open_session(url, "sk-b")  # the oldest session of all, but B holds only one
        a1 = open_session(url, "sk-a")
        a2 = open_session(url, "sk-a")
        assert ping(url, "sk-a", a1) == 200  # a1 used last: a2 is A's least recently used
        master = initialize(url, MASTER_KEY)
        after = {name: ping(url, key, session) for name, key, session in
                 (("a1", "sk-a", a1), ("a2", "sk-a", a2), ("b1", "sk-b", b1))}  # fmt: skip
    assert master.status_code == 200
    assert after == {"a1": 200, "a2": 404, "b1": 200}


def test_a_full_hub_with_no_idle_session_refuses_with_503_naming_the_limit() -> None:
    app = limited_app(max_sessions=2, max_sessions_per_key=10)
    with running(app) as base:
        url = f"{base}/mcp"
        a1, a2 = open_session(url, "sk-a"), open_session(url, "sk-a")
        with listening(url, "sk-a", a1), listening(url, "sk-a", a2):  # a GET stream keeps a session in use
            refused = initialize(url, "sk-b")
        wait_until(lambda: initialize(url, "sk-b").status_code == 200, "a session to become idle")
    assert refused.status_code == 503
    error = jsonrpc_error(refused, INITIALIZE["id"])
    assert "max_sessions = 2" in error["message"]
    assert error["data"] == {"limit": 2, "open": 2, "scope": "hub"}


def test_the_idle_timeout_stays_the_sdks_thirty_minutes() -> None:
    app = limited_app()
    with running(app) as base:
        http = mcp_http(app)
        timeouts = {served.manager.session_idle_timeout for served in (http.aggregated, *http.per_server.values())}
        open_session(f"{base}/mcp", "sk-a")
    assert timeouts == {SESSION_IDLE_TIMEOUT} == {1800}


def test_an_idle_session_keeps_no_http_request_alive() -> None:
    """The SDK's dispatcher kept each session's last message, and with it that POST's `Request` and uvicorn's request
    cycle (~5 KB), for as long as the session idled (`hub.mcp.streams.Forgetful`)."""
    gc.collect()
    earlier = {id(o) for o in gc.get_objects() if isinstance(o, Request)}  # other tests' (of this process)
    with running(limited_app()) as base:
        url = f"{base}/mcp"
        for _ in range(5):
            session = open_session(url, "sk-a")
            initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            assert httpx2.post(url, headers=headers("sk-a", session), json=initialized).status_code == 202
        gc.collect()
        kept = [o for o in gc.get_objects() if isinstance(o, Request) and o.scope.get("path") == "/mcp"
                and id(o) not in earlier]  # fmt: skip
    assert kept == []
