"""A 2026-07-28 request carries no MCP session: it must not open a `per_client` upstream session of its own.

The SDK builds a fresh `Connection` for each modern request and closes it with the response, so own sessions keyed by
it started (and stopped) a process per request: `completion/complete`, forwarded without a `Bridge`, did (5 calls, 5
processes). Tool calls run on a `Bridge`, which is no `Connection`, and stay on the shared session.
"""

from __future__ import annotations

import logging
import uuid

import mcp_types as types
import pytest

from hub.accounts.auth import Principal
from tests.mcp.conftest import (
    EVERYTHING,
    children_matching,
    keyed_hub_app,
    running,
    script_server,
    text_of,
    tool_server,
)
from tests.mcp.test_modern import modern_client, sample

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")]
KEYS = {"sk-a": Principal(key_id="a")}
CALLS = 5


async def test_modern_tool_calls_to_a_per_client_server_open_no_process_of_their_own() -> None:
    marker = f"modern-{uuid.uuid4().hex}"
    with running(keyed_hub_app({"tool": tool_server(marker, session="per_client")}, KEYS)) as url:
        shared = len(children_matching(marker))
        async with modern_client(f"{url}/mcp") as client:
            pids = {text_of(await client.call_tool("tool__pid", {})) for _ in range(CALLS)}
            after = len(children_matching(marker))
    assert (shared, after, len(pids)) == (1, 1, 1)  # the hub's shared session answered every call


async def test_a_modern_call_to_a_per_client_server_still_gets_sampling_answered() -> None:
    servers = {"ask": script_server("ask_server.py", session="per_client")}
    with running(keyed_hub_app(servers, KEYS)) as url:
        async with modern_client(f"{url}/mcp", sampling_callback=sample) as client:
            answers = [text_of(await client.call_tool("ask__ask", {})) for _ in range(2)]
    assert answers == ["re: who are you?"] * 2


async def test_modern_completions_of_a_per_client_server_open_no_session_of_their_own(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`completion/complete` is forwarded with the request's own caller (no `Bridge`): its connection is the SDK's
    one-request `Connection`, which must count as no MCP session."""
    marker = f"modern-{uuid.uuid4().hex}"
    every = {"command": "node", "args": [str(EVERYTHING), "stdio", marker], "session": "per_client"}
    ref = types.PromptReference(type="ref/prompt", name="every__completable-prompt")
    caplog.set_level(logging.INFO, logger="toolhub.mcp")
    with running(keyed_hub_app({"every": every}, KEYS)) as url:
        async with modern_client(f"{url}/mcp") as client:
            for _ in range(CALLS):
                completed = await client.complete(ref, {"name": "department", "value": "S"})
                assert completed.completion.values == ["Sales", "Support"]
    own = [r for r in caplog.records if "a client's own session closed" in r.getMessage()]
    assert own == []  # the hub has stopped: every own session it had opened has logged its close
