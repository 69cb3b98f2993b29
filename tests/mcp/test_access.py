"""Who may reach what: authentication before routing, key scopes on every MCP surface, REST transport checks."""

from __future__ import annotations

import httpx2
import pytest

from hub.auth import Principal
from tests.mcp.conftest import MASTER_KEY, keyed_hub_app, running, time_server, tool_server

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
    assert up.status_code == down.status_code == 403
    assert down.json()["error"]["message"] == up.json()["error"]["message"]
    assert "unavailable" not in down.text and "retrying" not in down.text
