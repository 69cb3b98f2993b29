"""`mcp_servers` entries read from a file: stdio servers work wherever Toolhub was started from."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
import yaml
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError

from hub.accounts.auth import MASTER, Principal
from hub.config import load_config, parse_config
from hub.limits import MAX_JSON_DEPTH
from hub.mcp.hub import McpHub
from tests.mcp.conftest import SERVERS, keyed_hub_app, mcp_client, running, tool_server
from tests.mcp.test_arguments import nested

pytestmark = pytest.mark.anyio


def write_config(folder: Path, servers: dict[str, Any]) -> Path:
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump({"mcp_servers": servers}))
    return path


def test_python_means_the_interpreter_running_toolhub_and_cwd_is_relative_to_the_config(tmp_path: Path) -> None:
    path = write_config(tmp_path, {
        "py": {"command": "python", "args": ["-m", "x"], "cwd": "tools"},
        "py3": {"command": "python3"},
        "other": {"command": "node", "cwd": "/srv/abs"},
        "web": {"url": "http://h/mcp"},
    })  # fmt: skip
    servers = load_config(path).mcp_servers
    assert (servers["py"].spec.command, servers["py"].spec.cwd) == (sys.executable, str(tmp_path / "tools"))
    assert (servers["py3"].spec.command, servers["py3"].spec.cwd) == (sys.executable, None)
    assert (servers["other"].spec.command, servers["other"].spec.cwd) == ("node", "/srv/abs")
    assert servers["web"].spec.url == "http://h/mcp"


def test_max_message_bytes_defaults_to_8_mib_and_is_configurable() -> None:
    config = parse_config(
        {"mcp_servers": {"a": {"command": "x"}, "b": {"command": "x", "max_message_bytes": 4096}}}, {}
    )
    assert config.mcp_servers["a"].spec.max_message_bytes == 8 * 1024 * 1024
    assert config.mcp_servers["b"].spec.max_message_bytes == 4096


async def test_a_python_upstream_in_the_config_folder_starts_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "deploy"
    (folder / "servers").mkdir(parents=True)
    shutil.copy(SERVERS / "tool_server.py", folder / "servers" / "tool_server.py")
    path = write_config(folder, {"tool": {"command": "python", "args": ["tool_server.py"], "cwd": "servers"}})
    assert Path.cwd() != folder  # the run's scratch directory (tests/conftest.py): not the config's folder; not
    # changed here, as hubs served by session fixtures resolve relative paths against it while they run
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # without the venv on PATH
    hub = McpHub(load_config(path).mcp_servers)
    async with hub.running():
        assert await hub.wait_ready()
        status = hub.status()["tool"]
        names = [t.name for t in hub.tools(MASTER)]
    assert status["state"] == "ready", status
    assert "tool__echo" in names


BROKEN = {"command": "python", "args": ["-c", "import sys; sys.exit('cannot start')"], "connect_timeout": 5}


async def test_mcp_clients_are_told_which_upstreams_are_down_and_why() -> None:
    keys = {"sk-tool": Principal(key_id="t", mcp_servers=frozenset({"tool"}))}
    with running(keyed_hub_app({"tool": tool_server(), "broken": BROKEN}, keys)) as url:
        async with mcp_client(f"{url}/mcp") as master, mcp_client(f"{url}/mcp", key="sk-tool") as limited:
            told, untold = master.instructions, limited.instructions
        async with mcp_client(f"{url}/mcp/broken") as one:
            told_one = one.instructions
    assert told is not None and told.startswith("These MCP servers are unavailable now")
    assert "- broken: down (" in told and "retrying" in told and "tool:" not in told
    assert untold is None  # a key that may not use the server learns nothing about it
    assert told_one is not None and told_one.startswith("Toolhub pass-through to the MCP server 'broken'.")
    assert "- broken: down (" in told_one


async def test_toolhub_stdio_names_a_down_upstream_in_its_instructions(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"tool": tool_server(), "broken": BROKEN})
    params = StdioServerParameters(command=sys.executable, args=["-m", "hub", "stdio", "--config", str(path)])
    async with Client(stdio_client(params)) as client:
        instructions = client.instructions
        names: list[str] = []
        for _ in range(300):  # at most ~30 s: the tool server may still be starting (a busy machine: CI's shards)
            names = [t.name for t in (await client.list_tools()).tools]
            if "tool__echo" in names:
                break
            await anyio.sleep(0.1)
        with pytest.raises(MCPError) as deep:  # the arguments check holds on this entry too
            await client.call_tool("tool__echo", nested(MAX_JSON_DEPTH + 20))
    # `toolhub stdio` answers initialize at once, while its upstreams may still be connecting.
    assert instructions is not None and ("- broken: down (" in instructions or "- broken: connecting" in instructions)
    assert "tool__echo" in names
    assert deep.value.error.code == types.INVALID_PARAMS
