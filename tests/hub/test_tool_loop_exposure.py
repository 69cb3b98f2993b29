"""The tool loop picks all tools or the search meta-tools by the routed provider's limit (OpenAI: 128 per request)."""

from __future__ import annotations

from typing import Any

import mcp_types
import orjson
import pytest

from hub.accounts.auth import MASTER
from hub.catalog.meta import META_NAMES
from hub.catalog.service import CatalogService, CatalogSettings
from hub.loop.plan import LoopPlan, plan_tool_loop
from hub.loop.run import LoopSettings, complete_with_tools
from hub.loop.stream import stream_with_tools
from providers.base import ChatRequest, Deployment
from tests.fakes.scripted import FakeHub, ScriptedProvider, text_result

pytestmark = pytest.mark.anyio

ASK = [{"role": "user", "content": "How many open orders?"}]
MCP_ALL = {"type": "mcp", "server_label": "*", "require_approval": "never"}
OPENAI = Deployment(provider="openai", model="gpt-x", api_base="http://unused")
ANTHROPIC = Deployment(provider="anthropic", model="claude-x", api_base="http://unused")


async def count_orders(args: dict[str, Any]) -> mcp_types.CallToolResult:
    return text_result("42 open orders")


async def other(args: dict[str, Any]) -> mcp_types.CallToolResult:
    return text_result("unused")


def big_hub(n: int = 200) -> FakeHub:
    """`n` hub tools over ten servers; `shop__count_orders` answers the question."""
    tools = {f"s{i % 10}__tool_{i:03d}": other for i in range(n - 1)}
    return FakeHub({**tools, "shop__count_orders": count_orders})


def plan_with(body: dict[str, Any], hub: FakeHub, settings: CatalogSettings) -> LoopPlan:
    plan = plan_tool_loop(body, (), hub, MASTER)
    assert plan is not None
    plan.catalog = CatalogService(settings)
    return plan


SEARCH_THEN_CALL = [
    [("hub__search_tools", {"query": "count orders"})],
    [("hub__call_tool", {"name": "shop__count_orders", "arguments": {}})],
    "There are 42 open orders.",
]


async def test_auto_with_200_tools_gives_an_openai_model_the_meta_tools_with_equal_bytes_every_turn() -> None:
    hub, model = big_hub(), ScriptedProvider(list(SEARCH_THEN_CALL))
    body = {"model": "m", "messages": ASK, "tools": [MCP_ALL]}
    plan = plan_with(body, hub, CatalogSettings(mode="auto", threshold=500))  # 200 < 500: OpenAI's 128 decides
    chat = ChatRequest(body=body, deployment=OPENAI)
    completion = await complete_with_tools(model, chat, plan, hub, MASTER, LoopSettings())
    assert completion["choices"][0]["message"]["content"] == "There are 42 open orders."
    sent = [orjson.dumps(request["tools"]) for request in model.requests]
    assert len(sent) == 3 and len(set(sent)) == 1
    assert [t["function"]["name"] for t in model.requests[0]["tools"]] == [
        n for n in META_NAMES if n != "hub__read_result"
    ]
    assert hub.calls == [("shop__count_orders", {})]
    found = next(m for m in model.requests[1]["messages"] if m["role"] == "tool")
    assert "shop__count_orders" in found["content"]


async def test_the_same_request_to_an_anthropic_model_gets_every_tool() -> None:
    hub, model = big_hub(), ScriptedProvider(["fine"])
    body = {"model": "m", "messages": ASK, "tools": [MCP_ALL]}
    plan = plan_with(body, hub, CatalogSettings(mode="auto", threshold=500))
    await complete_with_tools(model, ChatRequest(body=body, deployment=ANTHROPIC), plan, hub, MASTER, LoopSettings())
    assert len(model.requests[0]["tools"]) == 200


async def test_unset_mode_searches_only_past_the_providers_limit_counting_the_clients_own_tools() -> None:
    client_fn = {"type": "function", "function": {"name": "show_chart", "parameters": {"type": "object"}}}
    for n, client_tools, expected in [(128, [], 128), (128, [client_fn], 1 + 3), (100, [client_fn], 101)]:
        hub, model = big_hub(n), ScriptedProvider(["fine"])
        body = {"model": "m", "messages": ASK, "tools": [*client_tools, MCP_ALL]}
        plan = plan_with(body, hub, CatalogSettings())
        await complete_with_tools(model, ChatRequest(body=body, deployment=OPENAI), plan, hub, MASTER, LoopSettings())
        assert len(model.requests[0]["tools"]) == expected, (n, client_tools)


async def test_a_streamed_loop_sends_the_meta_tools_too() -> None:
    hub, model = big_hub(), ScriptedProvider(list(SEARCH_THEN_CALL))
    body = {"model": "m", "messages": ASK, "tools": [MCP_ALL], "stream": True}
    plan = plan_with(body, hub, CatalogSettings(mode="auto", threshold=500))
    async for _ in stream_with_tools(model, ChatRequest(body=body, deployment=OPENAI), plan, hub, MASTER,
                                     LoopSettings()):  # fmt: skip
        pass
    sent = {orjson.dumps(request["tools"]) for request in model.requests}
    assert len(model.requests) == 3 and len(sent) == 1
    assert len(model.requests[0]["tools"]) == 3 and hub.calls == [("shop__count_orders", {})]
