"""`mcp_servers.<name>.max_sessions_per_key`: one key cannot take every per-client session of a server."""

from __future__ import annotations

import uuid
from contextlib import AsyncExitStack
from typing import Any

import pytest
from mcp import Client

from hub.accounts.auth import MASTER, OPEN, Principal
from hub.config import parse_config
from hub.mcp.sessions import owner_of
from tests.mcp.conftest import (
    MASTER_KEY,
    children_matching,
    eventually,
    keyed_hub_app,
    mcp_client,
    running,
    text_of,
    tool_server,
)

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")]
KEYS = {"sk-a": Principal(key_id="a"), "sk-b": Principal(key_id="b")}


async def clients(stack: AsyncExitStack, url: str, key: str, count: int) -> list[Client]:
    """`count` MCP sessions of `key` to the hub at `url`, each its own downstream session."""
    return [await stack.enter_async_context(mcp_client(f"{url}/mcp", key=key)) for _ in range(count)]


async def echo(client: Client, text: str) -> tuple[bool, str]:
    result = await client.call_tool("tool__echo", {"text": text})
    return bool(result.is_error), text_of(result)


async def test_without_a_per_key_limit_one_key_can_take_every_session_and_lock_out_another() -> None:
    marker = f"hog-{uuid.uuid4().hex}"
    config = tool_server(marker, session="per_client", max_sessions=2)
    with running(keyed_hub_app({"tool": config}, KEYS)) as url:
        async with AsyncExitStack() as stack:
            held = [await echo(a, "a") for a in await clients(stack, url, "sk-a", 2)]
            (b,) = await clients(stack, url, "sk-b", 1)
            refused = await echo(b, "b")
            own_processes = len(children_matching(marker)) - 1  # the shared session's process is one
    assert held == [(False, "echo: a"), (False, "echo: a")]
    assert refused == (True, "MCP server 'tool' has 2 client sessions open (max_sessions); try later.")
    assert own_processes == 2


async def test_a_key_at_max_sessions_per_key_is_refused_while_other_keys_get_sessions() -> None:
    marker = f"share-{uuid.uuid4().hex}"
    config = tool_server(marker, session="per_client", max_sessions=4, max_sessions_per_key=1)
    refused = ("This key holds 1 of MCP server 'tool''s client sessions, its limit (max_sessions_per_key = 1); "
               "end one of its MCP sessions or try later.")  # fmt: skip
    with running(keyed_hub_app({"tool": config}, KEYS)) as url:
        async with AsyncExitStack() as stack:
            (second_a,) = await clients(stack, url, "sk-a", 1)
            b, *master = [*await clients(stack, url, "sk-b", 1), *await clients(stack, url, MASTER_KEY, 2)]
            async with mcp_client(f"{url}/mcp", key="sk-a") as first_a:
                answers = [await echo(client, "x") for client in (first_a, second_a, b, *master)]
                ok = (False, "echo: x")
                assert answers == [ok, (True, refused), ok, ok, (True, refused)]  # master: one key, not exempt
                assert len(children_matching(marker)) == 1 + 3  # the shared session, a's first, b's, master's first
            # a's first MCP session ended, and with it its own session of the server: a's second may open one now
            eventually(lambda: len(children_matching(marker)) == 1 + 2, what="a's own session to close")
            assert await echo(second_a, "again") == (False, "echo: again")


def test_the_master_key_and_an_open_gateway_each_count_as_one_key() -> None:
    class Caller:
        def __init__(self, principal: Principal) -> None:
            self.principal = principal

    owners = [owner_of(Caller(p)) for p in (MASTER, OPEN, Principal(key_id="a"), Principal(key_id="a", alias="x"))]
    assert owners == ["master", "open", "key:a", "key:a"]


def test_max_sessions_per_key_is_off_unless_set() -> None:
    def spec(**options: Any) -> Any:
        return parse_config({"mcp_servers": {"s": {"command": "x", **options}}}, {}).mcp_servers["s"].spec

    assert (spec().max_sessions_per_key, spec(max_sessions_per_key=3).max_sessions_per_key) == (None, 3)
    with pytest.raises(Exception):  # noqa: B017 - the config error type is hub.config's concern
        spec(max_sessions_per_key=0)
