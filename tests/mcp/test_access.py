"""Who may reach what: authentication before routing, key scopes on every MCP surface, REST transport checks."""

from __future__ import annotations

import httpx2
import pytest

from tests.mcp.conftest import keyed_hub_app, running, tool_server

pytestmark = pytest.mark.anyio


def test_unauthenticated_callers_cannot_tell_which_servers_exist() -> None:
    with running(keyed_hub_app({"tool": tool_server()}, {})) as url:
        known = httpx2.post(f"{url}/mcp/tool", json={})
        unknown = httpx2.post(f"{url}/mcp/nonexistent", json={})
    assert known.status_code == unknown.status_code == 401
    assert known.json() == unknown.json()
