"""Who may reach what: authentication before routing, key scopes on every MCP surface, REST transport checks."""

from __future__ import annotations

import anyio
import httpx2
import pytest
from mcp.shared.exceptions import MCPError

from hub.accounts.auth import Principal
from tests.mcp.conftest import (
    MASTER_KEY,
    keyed_hub_app,
    mcp_client,
    running,
    script_server,
    time_server,
    tool_server,
)

pytestmark = pytest.mark.anyio


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_unauthenticated_callers_cannot_tell_which_servers_exist() -> None:
    with running(keyed_hub_app({"tool": tool_server()}, {})) as url:
        known = httpx2.post(f"{url}/mcp/tool", json={})
        unknown = httpx2.post(f"{url}/mcp/nonexistent", json={})
    assert known.status_code == unknown.status_code == 401
    assert known.json() == unknown.json()


def test_a_down_servers_status_is_hidden_from_keys_that_may_not_use_it() -> None:
    keys = {"sk-time": Principal(key_id="t", mcp_servers=frozenset({"time"}))}
    app = keyed_hub_app({"tool": tool_server(), "time": time_server()}, keys)
    with running(app) as url:
        up = httpx2.post(f"{url}/mcp/tools/call", headers=bearer("sk-time"), json={"name": "tool__echo"})
        crashed = httpx2.post(f"{url}/mcp/tools/call", headers=bearer(MASTER_KEY), json={"name": "tool__crash"})
        down = httpx2.post(f"{url}/mcp/tools/call", headers=bearer("sk-time"), json={"name": "tool__echo"})
    assert crashed.status_code == 503
    assert up.status_code == down.status_code == 404  # as an unknown tool (tests/mcp/test_scoped_names.py)
    assert down.json()["error"]["message"] == up.json()["error"]["message"]
    assert "unavailable" not in down.text and "retrying" not in down.text


def test_a_key_limited_to_some_tools_sees_nothing_else_of_other_servers() -> None:
    keys = {"sk-echo": Principal(key_id="e", mcp_tools=frozenset({"tool/echo"}))}
    app = keyed_hub_app({"tool": tool_server(), "shared": script_server("shared_server.py")}, keys)
    with running(app) as url:
        other = httpx2.post(f"{url}/mcp/shared", headers=bearer("sk-echo"), json={})
        own = httpx2.post(f"{url}/mcp/tool", headers=bearer("sk-echo"), json={})
        listed = httpx2.get(f"{url}/mcp/tools/list", headers=bearer("sk-echo")).json()

        async def inspect() -> tuple[list[str], list[str], int, list[str]]:
            async with mcp_client(f"{url}/mcp", key="sk-echo") as client:
                tools = [t.name for t in (await client.list_tools()).tools]
                prompts = [p.name for p in (await client.list_prompts()).prompts]
                resources = (await client.list_resources()).resources
                with pytest.raises(MCPError):
                    await client.read_resource("shared://note")
                with pytest.raises(MCPError):
                    await client.get_prompt("shared__greet", {})
                return tools, prompts, len(resources), [*listed["servers"]]

        tools, prompts, resources, servers = anyio.run(inspect)
    assert other.status_code == 404 and other.json()["error"]["code"] == "server_not_found"
    assert own.status_code != 403
    assert (tools, prompts, resources, servers) == (["tool__echo"], [], 0, ["tool"])


def test_the_rest_endpoints_check_host_and_origin_like_mcp_and_read_json_whatever_its_content_type() -> None:
    app = keyed_hub_app({"tool": tool_server()}, {}, mcp_allowed_hosts=["hub.example.com"])
    call = {"name": "tool__echo", "arguments": {"text": "hi"}}
    body = b'{"name": "tool__echo", "arguments": {"text": "hi"}}'
    auth = bearer(MASTER_KEY)
    with running(app) as url:
        rebound = httpx2.get(f"{url}/mcp/tools/list", headers={**auth, "Host": "evil.example"})
        foreign = httpx2.post(f"{url}/mcp/tools/call", headers={**auth, "Origin": "https://evil.example"}, json=call)
        proxied = httpx2.get(f"{url}/mcp/tools/list", headers={**auth, "Host": "hub.example.com"})
        local = httpx2.post(f"{url}/mcp/tools/call", headers={**auth, "Origin": url}, json=call)
        plain = httpx2.post(f"{url}/mcp/tools/call", headers={**auth, "Content-Type": "text/plain"}, content=body)
        untyped = httpx2.post(f"{url}/mcp/tools/call", headers=auth, content=body)
        form = httpx2.post(f"{url}/mcp/tools/call", headers=auth, data={"name": "tool__echo"})
        # What a cross-site HTML form can send: a text/plain body, the page's Origin, no Authorization header.
        forged = httpx2.post(f"{url}/mcp/tools/call", headers={"Content-Type": "text/plain",
                             "Origin": "https://evil.example"}, content=body)  # fmt: skip
        keyless = httpx2.post(f"{url}/mcp/tools/call", headers={"Content-Type": "text/plain"}, content=body)
    assert rebound.status_code == 421 and rebound.json()["error"]["code"] == "invalid_host"
    assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "invalid_origin"
    assert proxied.status_code == 200 and local.status_code == 200
    assert plain.json() == untyped.json() == local.json()
    assert local.json()["content"] == [{"type": "text", "text": "echo: hi"}]
    assert form.status_code == 400 and form.json()["error"]["code"] == "invalid_json"
    assert forged.status_code == 403 and keyless.status_code == 401
