"""`toolhub stdio` driven by the official MCP client, and `toolhub tools` as operators run it."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
import yaml
from mcp import Client, StdioServerParameters

from tests.mcp.conftest import Notifications, children_matching, script_server, text_of, time_server, tool_server
from tests.support.servers import ROOT

pytestmark = pytest.mark.anyio


def write_config(tmp_path: Path, servers: dict[str, Any]) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"general_settings": {"master_key": "sk-unused-in-stdio"}, "mcp_servers": servers}))
    return path


async def test_toolhub_stdio_serves_the_catalog_to_a_desktop_client(tmp_path: Path) -> None:
    marker = f"marker-{uuid.uuid4().hex}"
    config = write_config(tmp_path, {"tool": tool_server(marker), "time": time_server()})
    params = StdioServerParameters(command=sys.executable, args=["-m", "hub", "stdio", "--config", str(config)],
                                   cwd=str(ROOT))  # fmt: skip
    notes = Notifications()
    async with Client(params, mode="legacy", message_handler=notes) as client:
        names = [t.name for t in (await client.list_tools()).tools]
        with anyio.fail_after(30):  # on a loaded machine an upstream may join after the first listing
            while not {"time__get_current_time", "tool__echo"} <= set(names):  # both servers, in either order
                await anyio.sleep(0.05)
                names = [t.name for t in (await client.list_tools()).tools]
        echoed = await client.call_tool("tool__echo", {"text": "stdio"})
        await client.call_tool("tool__add_tool", {"text": "later"})
        await notes.next(types.ToolListChangedNotification)
        after = {t.name for t in (await client.list_tools()).tools}
    assert names == ["time__convert_time", "time__get_current_time", *sorted(f"tool__{n}" for n in (
        "echo", "pid", "crash", "fail", "slow", "was_cancelled", "log", "add_tool"))]  # fmt: skip
    assert text_of(echoed) == "echo: stdio"
    assert "tool__later" in after
    assert children_matching(marker) == []


def test_toolhub_tools_prints_the_catalog_and_each_servers_health(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"time": time_server(), "hang": script_server("hang.py", connect_timeout=0.5)})
    done = subprocess.run([sys.executable, "-m", "hub", "tools", "--config", str(config)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["NAME", "SERVER", "ORIGINAL", "DESCRIPTION"]
    assert lines[1].split()[:3] == ["time__convert_time", "time", "convert_time"]
    assert lines[2].split()[:3] == ["time__get_current_time", "time", "get_current_time"]
    assert "(2 tools)" in lines
    assert "  time (stdio): ready - 2 tools" in lines
    assert any(
        line.startswith("  hang (stdio): down - TimeoutError: no answer within connect_timeout") for line in lines
    )
    assert done.returncode == 1  # one server is not ready


def test_toolhub_tools_reports_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"mcp_servers": {"tools": {"command": "x"}}}))
    done = subprocess.run([sys.executable, "-m", "hub", "tools", "--config", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert "mcp_servers.tools" in done.stderr
