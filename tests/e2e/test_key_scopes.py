"""A virtual key's MCP scope, end to end: the same key filters `/mcp` and the REST catalog, is enforced on calls and
in the tool loop; and every tool call the hub makes is recorded."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import openai
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from hub.config import parse_config
from hub.server import build_app
from tests.e2e.conftest import MASTER_KEY
from tests.fakes.openai_upstream import API_KEY, FakeOpenAI
from tests.support.hub import make_db, wait_for_tools
from tests.support.servers import ROOT, serve_app

MASTER = {"Authorization": f"Bearer {MASTER_KEY}"}
ASK = [{"role": "user", "content": "What is in the database?"}]


@pytest.fixture(scope="module")
def scoped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, FakeOpenAI, str]]:
    tmp: Path = tmp_path_factory.mktemp("scopes")
    shop = tmp / "shop.db"
    make_db(shop)
    fake = FakeOpenAI()
    with serve_app(fake.app) as upstream:
        entry = {"model": "openai/agent-forever", "api_base": f"{upstream}/v1", "api_key": API_KEY}
        config: dict[str, Any] = {
            "model_list": [
                {"model_name": "agent", "litellm_params": entry},
                # 12 prompt and 7 completion tokens a round at $1 each: $19 a round
                {"model_name": "agent-priced", "litellm_params": {**entry, "input_cost_per_token": 1.0,
                                                                  "output_cost_per_token": 1.0}},
            ],
            "general_settings": {"master_key": MASTER_KEY, "database_url": f"sqlite:///{tmp / 'hub.db'}",
                                 "max_tool_rounds": 2, "max_request_size_mb": 1},
            "mcp_servers": {"postgres_db": {"transport": "stdio", "command": sys.executable, "cwd": str(ROOT),
                                            "args": ["-m", "tools.postgres_db", "--dsn", f"sqlite:///{shop}"]}},
        }  # fmt: skip
        with serve_app(build_app(parse_config(config, {}))) as url:
            wait_for_tools(url, {"postgres_db"}, MASTER_KEY)
            permission = {"mcp_servers": ["postgres_db"], "mcp_tool_permissions": {"postgres_db": ["list_tables"]}}
            body = {"key_alias": "analyst", "models": ["agent"], "object_permission": permission}
            created = httpx2.post(f"{url}/key/generate", headers=MASTER, json=body)
            assert created.status_code == 200, created.text
            yield url, fake, created.json()["key"]


def test_the_rest_catalog_shows_a_scoped_key_only_its_tools(scoped: tuple[str, FakeOpenAI, str]) -> None:
    url, _, key = scoped
    listing = httpx2.get(f"{url}/mcp/tools/list", headers={"Authorization": f"Bearer {key}"}).json()
    assert [t["name"] for t in listing["tools"]] == ["postgres_db__list_tables"]
    everything = httpx2.get(f"{url}/mcp/tools/list", headers=MASTER).json()
    assert len(everything["tools"]) == 5


def test_a_scoped_key_cannot_call_other_tools(scoped: tuple[str, FakeOpenAI, str]) -> None:
    url, _, key = scoped
    auth = {"Authorization": f"Bearer {key}"}
    allowed = httpx2.post(
        f"{url}/mcp/tools/call", headers=auth, json={"name": "postgres_db__list_tables", "arguments": {}}
    )
    refused = httpx2.post(f"{url}/mcp/tools/call", headers=auth,
                          json={"name": "postgres_db__execute_query", "arguments": {"sql": "SELECT 1"}})  # fmt: skip
    assert allowed.status_code == 200 and allowed.json()["isError"] is False
    assert refused.status_code == 404  # as an unknown tool: a scoped key cannot find names by guessing
    assert refused.json()["error"]["code"] == "tool_not_found"


@pytest.mark.anyio
async def test_mcp_clients_with_a_scoped_key_see_and_call_only_its_tools(scoped: tuple[str, FakeOpenAI, str]) -> None:
    url, _, key = scoped
    with anyio.fail_after(20):
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as http,
            streamable_http_client(f"{url}/mcp", http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            tools = await session.list_tools()
            with pytest.raises(MCPError) as refused:  # as an unknown tool
                await session.call_tool("postgres_db__describe_table", {"table": "users"})
    assert [t.name for t in tools.tools] == ["postgres_db__list_tables"]
    assert refused.value.error.message == "Unknown tool: 'postgres_db__describe_table'."


def test_the_tool_loop_offers_a_scoped_key_only_its_tools(scoped: tuple[str, FakeOpenAI, str]) -> None:
    url, fake, key = scoped
    with openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=30) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="agent", messages=ASK,  # pyright: ignore[reportArgumentType]
            tools=[{"type": "mcp", "server_label": "postgres_db", "require_approval": "never"}],  # pyright: ignore[reportArgumentType]
        )  # fmt: skip
    completion = raw.parse()
    assert (completion.model_extra or {})["toolhub"]["stopped"] == "max_tool_rounds"
    assert float(raw.headers["x-toolhub-cost"]) == 0.0  # the fake model has no price
    assert float(raw.headers["x-toolhub-overhead-duration-ms"]) >= 0
    assert [t["function"]["name"] for t in fake.requests[-1]["tools"]] == ["postgres_db__list_tables"]


def test_tool_calls_are_recorded_with_the_key(scoped: tuple[str, FakeOpenAI, str]) -> None:
    url, _, key = scoped
    httpx2.post(f"{url}/mcp/tools/call", headers=MASTER, json={"name": "postgres_db__describe_table",
                                                                 "arguments": {"table": "nope"}})  # fmt: skip
    calls = httpx2.get(f"{url}/spend/tool_calls", headers=MASTER).json()["data"]
    assert calls[0]["tool"] == "describe_table" and calls[0]["server"] == "postgres_db"
    assert calls[0]["error"] and "nope" in calls[0]["error"]
    assert any(c["tool"] == "list_tables" and c["key_hash"] and c["error"] is None for c in calls)
    refused = httpx2.get(f"{url}/spend/tool_calls", headers={"Authorization": f"Bearer {key}"})
    assert refused.status_code == 403


@pytest.mark.parametrize("stream", [False, True])
def test_a_budget_that_runs_out_mid_loop_stops_the_loop(scoped: tuple[str, FakeOpenAI, str], stream: bool) -> None:
    url, fake, _ = scoped
    key = httpx2.post(f"{url}/key/generate", headers=MASTER, json={"max_budget": 15}).json()["key"]
    before = len(fake.requests)
    body = {"model": "agent-priced", "messages": ASK, "stream": stream,
            "tools": [{"type": "mcp", "server_label": "postgres_db", "require_approval": "never"}]}  # fmt: skip
    response = httpx2.post(f"{url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, json=body)
    if stream:  # the stream had started: it ends with an error event
        assert response.status_code == 200
        error = json.loads(response.text.strip().splitlines()[-1].removeprefix("data: "))["error"]
    else:
        assert response.status_code == 429
        error = response.json()["error"]
    assert error["code"] == "budget_exceeded" and "$19.000000 of max_budget $15.000000" in error["message"]
    assert len(fake.requests) - before == 1  # round 1 ran; round 2 was refused before calling the model
    logs = httpx2.get(f"{url}/spend/logs", headers=MASTER, params={"api_key": key}).json()["data"]
    assert [log["spend"] for log in logs] == [19.0]


def test_a_rest_tool_call_over_the_body_limit_is_413(scoped: tuple[str, FakeOpenAI, str]) -> None:
    url = scoped[0]
    body = {"name": "postgres_db__execute_query", "arguments": {"sql": "SELECT '" + "x" * (1024 * 1024) + "'"}}
    response = httpx2.post(f"{url}/mcp/tools/call", headers=MASTER, json=body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
