"""A server whose tools would be named like the meta-tools (`hub__search_tools`, ...) is refused as a config error:
at `toolhub stdio` start, at `serve` start (the catalog's lifespan extension) and on reload."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import yaml

from hub.catalog.meta import meta_clash
from hub.catalog.service import catalog_extension, check_namespaces
from hub.config import ConfigError, parse_config
from hub.state import HubState
from tests.support.servers import ROOT

SERVER = {"transport": "stdio", "command": sys.executable, "args": ["-c", "pass"]}


def config_of(servers: dict[str, Any], **general: Any) -> Any:
    return parse_config({"general_settings": {"master_key": "sk-x", **general}, "mcp_servers": servers}, {})


@pytest.mark.parametrize(
    ("prefix", "separator", "clash"),
    [("hub", "__", True), ("hub_", "_", True), ("hub", "_", True), ("hub", "-", False), ("hubspot", "__", False),
     ("github", "__", False), ("hu", "b__", True)],
)  # fmt: skip
def test_a_prefix_clashes_when_a_meta_tool_name_could_be_one_of_its_tools(prefix: str, separator: str,
                                                                          clash: bool) -> None:  # fmt: skip
    assert (meta_clash(prefix, separator) is not None) == clash


def test_a_server_named_hub_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError) as raised:
        check_namespaces(config_of({"github": SERVER, "hub": SERVER}))
    assert raised.value.path == "mcp_servers.hub"
    assert "hub__search_tools" in raised.value.message and "alias" in raised.value.message


def test_an_alias_is_checked_and_fixes_the_name() -> None:
    with pytest.raises(ConfigError) as raised:
        check_namespaces(config_of({"things": {**SERVER, "alias": "hub"}}))
    assert raised.value.path == "mcp_servers.things.alias"
    check_namespaces(config_of({"hub": {**SERVER, "alias": "myhub"}}))
    check_namespaces(config_of({"hub": SERVER}, mcp_tool_separator="-"))


@pytest.mark.anyio
async def test_serve_refuses_to_start_with_it() -> None:
    server = SimpleNamespace(spec=SimpleNamespace(alias=None))  # as parsed before config-time checks refuse it
    config = SimpleNamespace(mcp_servers={"hub": server}, mcp_tool_separator="__", max_tool_result_chars=20_000)
    state = SimpleNamespace(config=config, extras={})
    with pytest.raises(ConfigError):
        async with catalog_extension()(cast(HubState, state)):
            pass
    assert "catalog" not in state.extras


def test_toolhub_stdio_exits_with_the_config_error(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"mcp_servers": {"hub": SERVER}}))
    done = subprocess.run([sys.executable, "-m", "hub", "stdio", "--config", str(path)], cwd=ROOT, input=b"",
                          capture_output=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 2
    expected = f"toolhub: config error at mcp_servers.hub: {meta_clash('hub', '__')}\n"
    assert done.stderr.decode().endswith(expected)
