"""Fixes from the review of per-client sessions, log levels, meta-tools and resource scoping."""

from __future__ import annotations

import uuid

import pytest

from hub.accounts.auth import Principal
from tests.mcp.conftest import (
    children_matching,
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
KEYS = {"sk-a": Principal(key_id="a")}


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
