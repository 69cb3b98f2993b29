"""The MCP session caps from the config file: `general_settings.mcp_max_sessions` and `mcp_max_sessions_per_key` reach
the served hub's ledger, and a value that is not an integer >= 1 refuses the file, naming the key."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest

from hub.accounts.auth import MasterKeyAuth, Principal
from hub.app import create_app
from hub.config import Config, ConfigError, parse_config
from hub.mcp.http import McpHttp, McpSettings, mcp_extension, mcp_routes
from hub.state import HubState
from tests.mcp.conftest import MASTER_KEY, FakeKeys, running, tool_server

VERSION = "2025-11-25"
HELLO = {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": HELLO}
HEADERS = {"Authorization": "Bearer sk-a", "Accept": "application/json, text/event-stream"}


def config_of(**general: Any) -> Config:
    raw = {"general_settings": {"master_key": MASTER_KEY, **general}, "mcp_servers": {"tool": tool_server()}}
    return parse_config(raw, {})


def test_the_caps_default_to_the_admission_limits() -> None:
    settings = McpSettings.from_config(config_of())
    assert (settings.max_sessions, settings.max_sessions_per_key) == (10_000, 100)
    assert (settings.max_sessions, settings.max_sessions_per_key) == (McpSettings().max_sessions,
                                                                      McpSettings().max_sessions_per_key)  # fmt: skip


def test_a_configured_per_key_cap_limits_the_served_hub() -> None:
    config = config_of(mcp_max_sessions=50, mcp_max_sessions_per_key=1)

    @contextlib.asynccontextmanager
    async def with_keys(state: HubState) -> AsyncIterator[None]:
        state.auth = MasterKeyAuth(MASTER_KEY, FakeKeys({"sk-a": Principal(key_id="a")}))
        yield

    app = create_app(config, extensions=[mcp_extension(), with_keys], routes=mcp_routes())
    with running(app) as url:
        first = httpx2.post(f"{url}/mcp", headers=HEADERS, json=INITIALIZE)
        second = httpx2.post(f"{url}/mcp", headers=HEADERS, json=INITIALIZE)
        http: McpHttp = app.state.hub.extras["mcp_http"]
        limits = (http.ledger.max_sessions, http.ledger.max_sessions_per_key)
    assert (first.status_code, second.status_code) == (200, 429)
    assert second.json()["error"]["data"] == {"limit": 1, "open": 1, "scope": "key"}
    assert limits == (50, 1)


@pytest.mark.parametrize("key", ["mcp_max_sessions", "mcp_max_sessions_per_key"])
@pytest.mark.parametrize("value", [0, -1, "many", 2.5])
def test_a_cap_that_is_not_a_positive_integer_refuses_the_file(key: str, value: object) -> None:
    with pytest.raises(ConfigError) as raised:
        config_of(**{key: value})
    assert raised.value.path == f"general_settings.{key}"
