"""`session: per_client`: each downstream MCP session gets an upstream session (process) of its own."""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import httpx2
import pytest

from hub.accounts.auth import Principal
from hub.config import parse_config
from tests.mcp.conftest import (
    MASTER_KEY,
    children_matching,
    eventually,
    keyed_hub_app,
    mcp_client,
    running,
    script_server,
    text_of,
    tool_server,
)
from tests.mcp.test_routing import Downstream

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")]
KEYS = {"sk-a": Principal(key_id="a")}


def rest_pid(url: str) -> str:
    answer = httpx2.post(f"{url}/mcp/tools/call", json={"name": "tool__pid"},
                         headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=30)  # fmt: skip
    return answer.json()["content"][0]["text"]


async def test_each_client_session_gets_its_own_process_closed_with_it() -> None:
    marker = f"own-{uuid.uuid4().hex}"
    with running(keyed_hub_app({"tool": tool_server(marker, session="per_client")}, KEYS)) as url:
        async with mcp_client(f"{url}/mcp", key="sk-a") as a:
            async with mcp_client(f"{url}/mcp", key="sk-a") as b:
                pids = [text_of(await c.call_tool("tool__pid", {})) for c in (a, a, b)]
                shared = rest_pid(url)
                running_then = len(children_matching(marker))
            eventually(lambda: len(children_matching(marker)) == 2, what="b's own process to stop")
            again = text_of(await a.call_tool("tool__pid", {}))
        eventually(lambda: len(children_matching(marker)) == 1, what="a's own process to stop")
    assert pids[0] == pids[1] == again and pids[0] != pids[2]
    assert shared not in pids  # REST has no MCP session: the shared upstream session answers it
    assert running_then == 3


async def test_with_own_sessions_concurrent_requests_of_a_stdio_server_each_reach_their_caller() -> None:
    a, b = Downstream("a"), Downstream("b")
    results: dict[str, str] = {}
    with running(keyed_hub_app({"ask": script_server("ask_server.py", session="per_client")}, KEYS)) as url:
        async with (
            mcp_client(f"{url}/mcp", key="sk-a", sampling_callback=a.sample) as client_a,
            mcp_client(f"{url}/mcp", key="sk-a", sampling_callback=b.sample) as client_b,
        ):

            async def call(who: str, client: Any) -> None:
                results[who] = text_of(await client.call_tool("ask__ask", {}))

            async with anyio.create_task_group() as tg:
                tg.start_soon(call, "a", client_a)
                tg.start_soon(call, "b", client_b)
    assert results == {"a": "I am a", "b": "I am b"}
    assert (a.asked, b.asked) == (["sampling"], ["sampling"])


async def test_max_sessions_bounds_the_open_sessions_and_idle_ones_close() -> None:
    marker = f"idle-{uuid.uuid4().hex}"
    # idle_timeout: a's session must still be open when b calls (a stall of 0.5 s on a loaded machine closed it)
    config = tool_server(marker, session="per_client", max_sessions=1, idle_timeout=2)
    with running(keyed_hub_app({"tool": config}, KEYS)) as url:
        async with mcp_client(f"{url}/mcp", key="sk-a") as a, mcp_client(f"{url}/mcp", key="sk-a") as b:
            first = await a.call_tool("tool__echo", {"text": "a"})
            refused = await b.call_tool("tool__echo", {"text": "b"})
            eventually(lambda: len(children_matching(marker)) == 1, what="the idle session to close")
            later = await b.call_tool("tool__echo", {"text": "b"})
    assert text_of(first) == "echo: a" and text_of(later) == "echo: b"
    assert refused.is_error and "max_sessions" in text_of(refused)


def test_session_modes_are_read_from_the_config() -> None:
    def spec(**options: Any) -> Any:
        config = parse_config({"mcp_servers": {"s": {"command": "x", **options}}}, {})
        return config.mcp_servers["s"].spec

    assert (spec().session, spec().idle_timeout, spec().max_sessions) == ("shared", 600.0, 32)
    assert spec(session="auto").session == "auto"
    with pytest.raises(Exception):  # noqa: B017 - the config error type is hub.config's concern
        spec(session="sometimes")


async def test_auto_opens_own_sessions_once_the_server_asked_a_client() -> None:
    a = Downstream("a")
    with running(keyed_hub_app({"ask": script_server("ask_server.py", session="auto")}, KEYS)) as url:
        async with mcp_client(f"{url}/mcp", key="sk-a", sampling_callback=a.sample) as client:
            first = text_of(await client.call_tool("ask__ask", {}))  # on the shared session: it asks, so...
            with anyio.fail_after(30):
                second = text_of(await client.call_tool("ask__ask", {}))  # ...this one runs on a's own session
    assert first == second == "I am a"
