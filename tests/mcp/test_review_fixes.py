"""Fixes from the review of per-client sessions, log levels, meta-tools and resource scoping."""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.connection import Connection
from mcp.server.subscriptions import ResourceUpdated

from hub.accounts.auth import Principal
from hub.config import ConfigError, parse_config
from hub.mcp.sessions import ClientSessions
from hub.mcp.upstream import Upstream
from tests.mcp.conftest import (
    MASTER_KEY,
    Notifications,
    children_matching,
    eventually,
    hub_app,
    keyed_hub_app,
    mcp_client,
    running,
    script_server,
    text_of,
    tool_server,
)
from tests.mcp.test_modern import modern_client, sample

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")]
KEYS = {"sk-a": Principal(key_id="a"), "sk-one": Principal(key_id="one", mcp_servers=frozenset({"one"}))}


async def test_set_level_starts_no_per_client_process_and_a_full_server_fails_nothing() -> None:
    one, other = f"lvl-{uuid.uuid4().hex}", f"lvl-{uuid.uuid4().hex}"
    servers = {"tool": tool_server(one, session="per_client", max_sessions=1),
               "other": tool_server(other, session="per_client")}  # fmt: skip
    with running(keyed_hub_app(servers, KEYS)) as url:
        before = (len(children_matching(one)), len(children_matching(other)))
        async with mcp_client(f"{url}/mcp", key="sk-a") as a, mcp_client(f"{url}/mcp", key="sk-a") as b:
            await a.set_logging_level("info")
            await a.call_tool("tool__echo", {"text": "x"})  # a's own session of `tool`: the only one allowed
            await b.set_logging_level("info")  # used to open b's own session and fail at max_sessions
            after = (len(children_matching(one)), len(children_matching(other)))
    assert after == (before[0] + 1, before[1])


async def test_a_clients_own_session_opened_after_set_level_runs_at_the_clients_level() -> None:
    name = f"own-{uuid.uuid4().hex}"
    servers = {"ask": script_server("ask_server.py", name, session="per_client")}
    with running(keyed_hub_app(servers, KEYS)) as url:
        async with mcp_client(f"{url}/mcp", key="sk-a") as a, mcp_client(f"{url}/mcp", key="sk-a") as b:
            await b.set_logging_level("debug")
            await a.set_logging_level("error")
            assert len(children_matching(name)) == 1  # only the hub's shared session
            level = text_of(await a.call_tool("ask__level", {}))
            await a.set_logging_level("warning")  # applied to the open own session
            changed = text_of(await a.call_tool("ask__level", {}))
    assert (level, changed) == ("error", "warning")


async def test_a_modern_client_answers_sampling_asked_through_hub_call_tool() -> None:
    with running(hub_app({"ask": script_server("ask_server.py")}, tool_exposure="search")) as url:
        async with modern_client(f"{url}/mcp", sampling_callback=sample) as client:
            direct = await client.call_tool("ask__ask", {})
            meta = await client.call_tool("hub__call_tool", {"name": "ask__ask", "arguments": {}})
    assert not meta.is_error
    assert text_of(meta) == text_of(direct)


def test_results_is_refused_as_a_server_name_like_tools() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config({"mcp_servers": {"results": {"command": "x"}}}, {})
    assert raised.value.path == "mcp_servers.results"


class _Caller:
    def __init__(self, session: Connection) -> None:
        self.session = session


def _unused(*_: Any) -> None:
    """No upstream event is expected here."""


async def test_a_connection_registers_one_close_callback_however_often_its_own_session_is_replaced() -> None:
    # A command that never starts: the own session keeps retrying (a scope to cancel) and starts no process.
    spec = {"command": "/nonexistent/toolhub-test", "session": "per_client"}
    config = parse_config({"mcp_servers": {"s": spec}}, {}).mcp_servers["s"]
    shared = Upstream(config, _unused, _unused)
    connection = Connection(Any, protocol_version="2025-11-25")  # pyright: ignore[reportArgumentType]
    async with anyio.create_task_group() as tg:
        sessions = ClientSessions(lambda: tg, _unused)
        owns: list[Upstream] = []
        for _ in range(3):
            async with sessions.using(shared, _Caller(connection)) as own:
                owns.append(own)
            sessions.close_server("s")  # closing: the next request gets a new own session
        callbacks = len(connection.exit_stack._exit_callbacks)  # pyright: ignore[reportAttributeAccessIssue]
        async with sessions.using(shared, _Caller(connection)):
            open_before = sessions.count("s")
        await connection.exit_stack.aclose()  # the client's MCP session ends, and with it its own sessions
        open_after = sessions.count("s")
        tg.cancel_scope.cancel()
        assert len({id(own) for own in owns}) == 3
        assert (callbacks, open_before, open_after) == (1, 1, 0)


async def test_unsubscribe_after_the_clients_own_session_idled_out_starts_no_process() -> None:
    name = f"unsub-{uuid.uuid4().hex}"
    # idle_timeout: the own session must still be open when counted just after the subscribe (0.5 s was a stall)
    servers = {"ask": script_server("ask_server.py", name, session="per_client", idle_timeout=2)}
    with running(keyed_hub_app(servers, KEYS)) as url:
        async with mcp_client(f"{url}/mcp", key="sk-a") as client:
            uri = next(r.uri for r in (await client.list_resources()).resources if r.uri.endswith("note://shared"))
            await client.subscribe_resource(uri)
            assert len(children_matching(name)) == 2  # the shared session and the client's own
            eventually(lambda: len(children_matching(name)) == 1, what="the idle own session to close")
            await client.unsubscribe_resource(uri)
            after = len(children_matching(name))
    assert after == 1


def _updates(notes: Notifications) -> list[str]:
    return [str(m.params.uri) for m in notes.seen if isinstance(m, types.ResourceUpdatedNotification)]


async def _touched(client: Client, tool: str, notes: Notifications, count: int) -> None:
    await client.call_tool(tool, {})
    with anyio.fail_after(20):
        while len(_updates(notes)) < count:
            await notes.next(types.ResourceUpdatedNotification)


async def test_an_update_from_a_clients_own_session_goes_to_that_client_only() -> None:
    seen_a, seen_b = Notifications(), Notifications()
    with running(keyed_hub_app({"ask": script_server("ask_server.py", session="per_client")}, KEYS)) as url:
        async with (
            mcp_client(f"{url}/mcp", key="sk-a", message_handler=seen_a) as a,
            mcp_client(f"{url}/mcp", key="sk-a", message_handler=seen_b) as b,
        ):
            await a.subscribe_resource("note://shared")
            await b.subscribe_resource("note://shared")
            await _touched(a, "ask__touch", seen_a, 1)
            await _touched(b, "ask__touch", seen_b, 1)  # an update of a's session would have reached b first
    assert (_updates(seen_a), _updates(seen_b)) == (["note://shared"], ["note://shared"])


async def test_a_2026_era_listen_stream_gets_no_updates_of_servers_its_key_may_not_use() -> None:
    servers = {"one": script_server("ask_server.py", "one"), "two": script_server("ask_server.py", "two")}
    uris = ["toolhub://one/note://shared", "toolhub://two/note://shared"]
    seen = Notifications()
    with running(keyed_hub_app(servers, KEYS)) as url:
        async with (
            mcp_client(f"{url}/mcp", key=MASTER_KEY, message_handler=seen) as legacy,
            httpx2.AsyncClient(headers={"Authorization": "Bearer sk-one"}) as http,
            Client(streamable_http_client(f"{url}/mcp", http_client=http)) as modern,
        ):
            for uri in uris:
                await legacy.subscribe_resource(uri)
            async with modern.listen(resource_subscriptions=uris) as subscription:
                await _touched(legacy, "two__touch", seen, 1)
                await _touched(legacy, "one__touch", seen, 2)
                with anyio.fail_after(20):
                    first = await anext(aiter(subscription))
    assert first == ResourceUpdated("toolhub://one/note://shared")
