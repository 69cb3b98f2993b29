"""`general_settings.mcp_tool_separator` names the hub's tools over every transport."""

from __future__ import annotations

import sys

import httpx2

from hub.config import parse_config
from hub.server import build_app
from tests.e2e.conftest import MASTER_KEY
from tests.support.hub import wait_for_tools
from tests.support.servers import ROOT, serve_app


def test_the_configured_separator_names_the_tools() -> None:
    server = str(ROOT / "tests" / "mcp" / "servers" / "tool_server.py")
    config = {
        "general_settings": {"master_key": MASTER_KEY, "mcp_tool_separator": "-"},
        "mcp_servers": {"aux": {"transport": "stdio", "command": sys.executable, "args": [server]}},
    }
    with serve_app(build_app(parse_config(config, {}))) as url:
        wait_for_tools(url, {"aux"}, MASTER_KEY)
        listing = httpx2.get(f"{url}/mcp/tools/list", headers={"Authorization": f"Bearer {MASTER_KEY}"}).json()
        called = httpx2.post(f"{url}/mcp/tools/call", headers={"Authorization": f"Bearer {MASTER_KEY}"},
                             json={"name": "aux-echo", "arguments": {"text": "hi"}})  # fmt: skip
    assert "aux-echo" in [tool["name"] for tool in listing["tools"]]
    assert called.json()["content"][0]["text"] == "echo: hi"
