"""A key limited to some MCP servers or tools cannot find out which others exist: every surface answers a server or
tool it may not use exactly as one that does not exist (`/mcp/<server>`, REST `tools/call`, JSON-RPC `tools/call`)."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import httpx2
import pytest
from mcp.shared.exceptions import MCPError

from hub.accounts.auth import Principal
from tests.mcp.conftest import MASTER_KEY, keyed_hub_app, mcp_client, running, tool_server

KEYS = {
    "sk-tool": Principal(key_id="t", mcp_servers=frozenset({"tool"})),
    "sk-echo": Principal(key_id="e", mcp_tools=frozenset({"tool/echo"})),
}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with running(keyed_hub_app({"tool": tool_server(), "db": tool_server()}, KEYS)) as base:
        yield base


def not_found(code: str, message: str, param: str | None = None) -> dict[str, object]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}


def test_a_server_the_key_may_not_use_is_answered_as_one_that_does_not_exist(url: str) -> None:
    forbidden = httpx2.post(f"{url}/mcp/db", headers=bearer("sk-tool"), json={})
    made_up = httpx2.post(f"{url}/mcp/dc", headers=bearer("sk-tool"), json={})
    master = httpx2.post(f"{url}/mcp/db", headers=bearer(MASTER_KEY), json={})
    own = httpx2.post(f"{url}/mcp/tool", headers=bearer("sk-tool"), json={})
    assert (forbidden.status_code, made_up.status_code) == (404, 404)
    assert forbidden.json() == not_found("server_not_found", "No MCP server named 'db'.")
    assert made_up.json() == not_found("server_not_found", "No MCP server named 'dc'.")
    assert master.status_code not in (403, 404) and own.status_code not in (403, 404)


@pytest.mark.parametrize(
    ("key", "forbidden", "made_up"), [("sk-tool", "db__echo", "db__echp"), ("sk-echo", "tool__pid", "tool__pie")]
)
def test_rest_answers_a_tool_the_key_may_not_use_as_an_unknown_one(
    url: str, key: str, forbidden: str, made_up: str
) -> None:
    call = f"{url}/mcp/tools/call"
    refused = httpx2.post(call, headers=bearer(key), json={"name": forbidden})
    unknown = httpx2.post(call, headers=bearer(key), json={"name": made_up})
    master = httpx2.post(call, headers=bearer(MASTER_KEY), json={"name": forbidden})
    assert (refused.status_code, unknown.status_code, master.status_code) == (404, 404, 200)
    assert refused.json() == not_found("tool_not_found", f"Unknown tool: {forbidden!r}.", "name")
    assert unknown.json() == not_found("tool_not_found", f"Unknown tool: {made_up!r}.", "name")


async def _refusals(url: str, key: str, names: tuple[str, str]) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    async with mcp_client(f"{url}/mcp", key=key) as client:
        for name in names:
            with pytest.raises(MCPError) as raised:
                await client.call_tool(name, {})
            found.append((raised.value.error.code, raised.value.error.message))
    return found


@pytest.mark.parametrize(
    ("key", "forbidden", "made_up"), [("sk-tool", "db__echo", "db__echp"), ("sk-echo", "tool__pid", "tool__pie")]
)
def test_json_rpc_answers_a_tool_the_key_may_not_use_as_an_unknown_one(
    url: str, key: str, forbidden: str, made_up: str
) -> None:
    refusals = anyio.run(_refusals, url, key, (forbidden, made_up))
    assert refusals == [(-32602, f"Unknown tool: {forbidden!r}."), (-32602, f"Unknown tool: {made_up!r}.")]


def test_while_a_server_is_down_a_tool_of_it_the_key_may_not_use_is_still_an_unknown_one() -> None:
    keys = {"sk-echo": Principal(key_id="e", mcp_tools=frozenset({"tool/echo"}))}
    with running(keyed_hub_app({"tool": tool_server()}, keys)) as base:
        call = f"{base}/mcp/tools/call"
        crashed = httpx2.post(call, headers=bearer(MASTER_KEY), json={"name": "tool__crash"})
        refused = httpx2.post(call, headers=bearer("sk-echo"), json={"name": "tool__pid"})
        unknown = httpx2.post(call, headers=bearer("sk-echo"), json={"name": "tool__pie"})
        own = httpx2.post(call, headers=bearer("sk-echo"), json={"name": "tool__echo", "arguments": {"text": "x"}})
    assert (crashed.status_code, own.status_code) == (503, 503)  # down: its own tool says so
    assert refused.json() == not_found("tool_not_found", "Unknown tool: 'tool__pid'.", "name")
    assert unknown.json() == not_found("tool_not_found", "Unknown tool: 'tool__pie'.", "name")
