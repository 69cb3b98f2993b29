"""`mcp_servers` entries read from a file: stdio servers work wherever Toolhub was started from."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from hub.accounts.auth import MASTER
from hub.config import load_config, parse_config
from hub.mcp.hub import McpHub
from tests.mcp.conftest import SERVERS

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
    monkeypatch.chdir(tmp_path)  # anywhere but the config's folder, without the venv on PATH
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    hub = McpHub(load_config(path).mcp_servers)
    async with hub.running():
        assert await hub.wait_ready()
        status = hub.status()["tool"]
        names = [t.name for t in hub.tools(MASTER)]
    assert status["state"] == "ready", status
    assert "tool__echo" in names
