"""A gateway for the tool loop's request checks and accounting: two stdio MCP servers of the test tool server
(`aux`, and `secret`, which the scoped key may not use), the fake OpenAI model (`plain` answers, `agent-slow` calls
`slow`), SQLite for keys and spend."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

from hub.config import parse_config
from hub.server import build_app
from tests.fakes.openai_upstream import API_KEY, FakeOpenAI
from tests.support.hub import wait_for_tools
from tests.support.servers import ROOT, serve_app

MASTER_KEY = "sk-toolhub-loop-checks"
TOOL_SERVER = str(ROOT / "tests" / "mcp" / "servers" / "tool_server.py")


@dataclass(frozen=True)
class Gateway:
    url: str
    scoped_key: str
    """A virtual key that may use the MCP server `aux` only."""

    def auth(self, key: str = MASTER_KEY) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="package")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp: Path = tmp_path_factory.mktemp("loop-gateway")
    fake = FakeOpenAI()
    with serve_app(fake.app) as upstream:
        models = [
            {"model_name": name, "litellm_params": {"model": f"openai/{name}", "api_base": f"{upstream}/v1",
                                                    "api_key": API_KEY}}
            for name in ("plain", "agent-slow")
        ]  # fmt: skip
        server = {"transport": "stdio", "command": sys.executable, "args": [TOOL_SERVER], "call_timeout": 60}
        config = {
            "model_list": models,
            "general_settings": {"master_key": MASTER_KEY, "database_url": f"sqlite:///{tmp / 'hub.db'}",
                                 "max_tool_rounds": 2, "tool_loop_keepalive_seconds": 0.2},
            "mcp_servers": {"aux": server, "secret": server},
        }  # fmt: skip
        with serve_app(build_app(parse_config(config, {}))) as url:
            wait_for_tools(url, {"aux", "secret"}, MASTER_KEY)
            body = {"key_alias": "aux-only", "object_permission": {"mcp_servers": ["aux"]}}
            created = httpx2.post(f"{url}/key/generate", headers={"Authorization": f"Bearer {MASTER_KEY}"}, json=body)
            assert created.status_code == 200, created.text
            yield Gateway(url, created.json()["key"])
