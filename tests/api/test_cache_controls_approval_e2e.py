"""A malformed `cache` control on the /v1/responses request that approves a hub tool call is refused before the
approved call runs (the response cache would refuse it only once `run_chat` starts, after the tool ran): the official
`openai` SDK, a gateway with `cache: true`, the real `tools.postgres_db` server over SQLite, the fake upstream's
`agent-approve` model, and the gateway's own record of the tool calls it ran (/spend/tool_calls).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest

from hub.config import parse_config
from hub.server import build_app
from tests.fakes.openai_upstream import API_KEY, FakeOpenAI
from tests.support.hub import make_db, wait_for_tools
from tests.support.servers import ROOT, serve_app

MASTER_KEY = "sk-toolhub-cache-approval"
APPROVED_DB: Any = {"type": "mcp", "server_label": "postgres_db", "require_approval": "always"}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("cache_approval")
    make_db(folder / "shop.db")
    with serve_app(FakeOpenAI().app) as upstream:
        params = {"model": "openai/agent-approve", "api_base": f"{upstream}/v1", "api_key": API_KEY}
        server = {"transport": "stdio", "command": sys.executable, "cwd": str(ROOT),
                  "args": ["-m", "tools.postgres_db", "--dsn", f"sqlite:///{folder / 'shop.db'}"]}  # fmt: skip
        config: dict[str, Any] = {
            "model_list": [{"model_name": "agent-approve", "litellm_params": params}],
            "general_settings": {"master_key": MASTER_KEY, "database_url": f"sqlite:///{folder / 'toolhub.db'}"},
            "mcp_servers": {"postgres_db": server},
            "litellm_settings": {"cache": True},
        }
        with serve_app(build_app(parse_config(config, {}))) as url:
            wait_for_tools(url, {"postgres_db"}, MASTER_KEY)
            yield url


def _tool_calls(url: str, request_id: str) -> list[dict[str, Any]]:
    """The tool calls the gateway recorded for one request, once the usage writer stored any."""
    rows: list[dict[str, Any]] = []
    with httpx2.Client(base_url=url, headers={"Authorization": f"Bearer {MASTER_KEY}"}) as admin:
        for _ in range(100):
            data = admin.get("/spend/tool_calls", params={"limit": 1000}).json()["data"]
            if rows := [r for r in data if r["request_id"] == request_id]:
                break
            time.sleep(0.05)
    return rows


def _recorded(url: str) -> set[str]:
    with httpx2.Client(base_url=url, headers={"Authorization": f"Bearer {MASTER_KEY}"}) as admin:
        return {r["request_id"] for r in admin.get("/spend/tool_calls", params={"limit": 1000}).json()["data"]}


def test_an_approval_with_a_malformed_cache_control_is_refused_before_the_tool_runs(gateway: str) -> None:
    with openai.OpenAI(base_url=f"{gateway}/v1", api_key=MASTER_KEY, max_retries=0, timeout=30) as client:
        first = client.responses.create(model="agent-approve", input="Describe users", tools=[APPROVED_DB])
        yes: Any = [{"type": "mcp_approval_response", "approval_request_id": first.output[-1].id, "approve": True}]
        with pytest.raises(openai.BadRequestError) as caught:
            client.responses.create(model="agent-approve", input=yes, previous_response_id=first.id,
                                    tools=[APPROVED_DB], extra_body={"cache": {"ttl": -1}})  # fmt: skip
        assert (caught.value.param, caught.value.code) == ("cache", "invalid_cache_control")
        refused = caught.value.response.headers["x-request-id"]
        raw = client.responses.with_raw_response.create(model="agent-approve", input=yes,
                                                        previous_response_id=first.id, tools=[APPROVED_DB])  # fmt: skip
    assert [c["tool"] for c in _tool_calls(gateway, raw.headers["x-request-id"])] == ["describe_table"]
    assert refused not in _recorded(gateway)  # recorded in order: the accepted request's call came after
