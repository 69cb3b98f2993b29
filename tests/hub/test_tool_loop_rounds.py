"""The tool loop across rounds and turns, in memory: servers still starting, hub-namespaced calls the gateway cannot
run, the text of every round, hub rounds kept while the client runs its own tools, and request ids on tool runs."""

from __future__ import annotations

import json
from typing import Any

import mcp_types
import pytest

from hub.accounts.auth import MASTER, Principal
from hub.loop.memory import RoundMemory, hub_rounds
from hub.loop.plan import LoopPlan, plan_tool_loop, prepare_tool_loop
from hub.loop.run import STOPPED_TEXT, LoopSettings, complete_with_tools
from hub.loop.stream import stream_with_tools
from providers.base import ChatRequest, Deployment
from tests.fakes.scripted import FakeHub, ScriptedProvider, Turn, text_result

pytestmark = pytest.mark.anyio

DEPLOYMENT = Deployment(provider="openai", model="scripted", api_base="http://unused")
ASK = [{"role": "user", "content": "What time is it?"}]
CHART = {"type": "function", "function": {"name": "show_chart", "parameters": {"type": "object"}}}


async def get_current_time(args: dict[str, Any]) -> mcp_types.CallToolResult:
    return text_result('{"datetime": "2026-12-05T12:00:00+00:00"}')


def time_hub(**kwargs: Any) -> FakeHub:
    return FakeHub({"time__get_current_time": get_current_time, "db__list_tables": get_current_time}, **kwargs)


def mcp(label: str = "*", **extra: Any) -> dict[str, Any]:
    return {"type": "mcp", "server_label": label, "require_approval": "never", **extra}


def plan_for(body: dict[str, Any], hub: FakeHub, principal: Principal = MASTER) -> LoopPlan:
    plan = plan_tool_loop(body, (), hub, principal)
    assert plan is not None
    return plan


async def answer(
    turns: list[Turn], body: dict[str, Any], hub: FakeHub, stream: bool, plan: LoopPlan | None = None, **kw: Any
) -> tuple[dict[str, Any], ScriptedProvider]:
    """Run one request through the loop; the answer as one completion-like dict (streams are put together)."""
    model, plan = ScriptedProvider(turns), plan or plan_for(body, hub)
    request = ChatRequest(body=body, deployment=DEPLOYMENT, request_id=kw.pop("request_id", ""))
    principal = kw.pop("principal", MASTER)
    if not stream:
        completion = await complete_with_tools(model, request, plan, hub, principal, LoopSettings(**kw))
        choice = completion["choices"][0]
        return {"tool_calls": None, **choice["message"], "finish_reason": choice["finish_reason"]}, model
    message: dict[str, Any] = {"content": "", "tool_calls": {}, "finish_reason": None}
    async for chunk in stream_with_tools(model, request, plan, hub, principal, LoopSettings(**kw)):
        if isinstance(chunk, bytes) or not chunk["choices"]:
            continue
        delta, finish = chunk["choices"][0]["delta"], chunk["choices"][0]["finish_reason"]
        message["content"] += delta.get("content") or ""
        for call in delta.get("tool_calls") or []:
            whole = message["tool_calls"].setdefault(
                call["index"], {"id": "", "function": {"name": "", "arguments": ""}}
            )
            whole["id"] += call.get("id") or ""
            whole["function"]["name"] += call.get("function", {}).get("name") or ""
            whole["function"]["arguments"] += call.get("function", {}).get("arguments") or ""
        message["finish_reason"] = finish or message["finish_reason"]
    message["content"] = message["content"] or None
    message["tool_calls"] = [message["tool_calls"][i] for i in sorted(message["tool_calls"])] or None
    return message, model


# -- 1. servers still starting; hub-namespaced calls that cannot run ------------------------------------------------


async def test_a_request_naming_a_server_still_starting_waits_for_its_first_attempt() -> None:
    hub = time_hub(starting={"time"})
    assert plan_for({"tools": [mcp("time")]}, hub).hub_tools == {}  # what a request got before waiting
    plan = await prepare_tool_loop({"tools": [mcp("time")]}, (), {"mcp": hub}, MASTER)
    assert plan is not None and set(plan.hub_tools) == {"time__get_current_time"}


async def test_model_defaults_and_star_entries_wait_only_for_servers_the_key_may_use() -> None:
    hub = time_hub(starting={"time", "db"})
    key = Principal(key_id="k", mcp_servers=frozenset({"time"}))
    plan = await prepare_tool_loop({"tools": [mcp()]}, (), {"mcp": hub}, key)
    assert plan is not None and set(plan.hub_tools) == {"time__get_current_time"} and hub.starting == {"db"}
    hub = time_hub(starting={"time", "db"})
    plan = await prepare_tool_loop({}, ("db",), {"mcp": hub}, MASTER)
    assert plan is not None and set(plan.hub_tools) == {"db__list_tables"} and hub.starting == {"time"}
    hub = time_hub(starting={"time", "db"})
    litellm = {"type": "mcp", "server_url": "litellm_proxy/mcp/time", "require_approval": "never"}
    plan = await prepare_tool_loop({"tools": [CHART, litellm]}, (), {"mcp": hub}, MASTER)
    assert plan is not None and set(plan.hub_tools) == {"time__get_current_time"} and hub.starting == {"db"}


async def test_a_request_without_hub_tools_has_no_plan_and_waits_for_nothing() -> None:
    hub = time_hub(starting={"time"})
    assert await prepare_tool_loop({"tools": [CHART]}, (), {"mcp": hub}, MASTER) is None
    assert hub.starting == {"time"}


UNAVAILABLE = [
    pytest.param({"down": {"time"}}, mcp("time"), MASTER, "the MCP server 'time' is not connected", id="server-down"),
    pytest.param(
        {},
        mcp("db"),
        Principal(key_id="k", mcp_servers=frozenset({"db"})),
        "no such tool is available to this request",
        id="key-not-allowed",
    ),
    pytest.param(
        {}, mcp("db"), MASTER, "it is not among the tools offered in this request", id="not-offered-in-this-request"
    ),
    pytest.param(
        {}, mcp("time", allowed_tools=["nothing"]), MASTER, "it is not among the tools offered", id="filtered-out"
    ),
]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("hub_kwargs", "entry", "principal", "reason"), UNAVAILABLE)
async def test_a_call_to_an_unavailable_hub_tool_is_an_error_result_for_the_model_not_a_client_call(
    stream: bool, hub_kwargs: dict[str, Any], entry: dict[str, Any], principal: Principal, reason: str
) -> None:
    hub = time_hub(**hub_kwargs)
    body = {"model": "m", "messages": ASK, "tools": [entry, CHART]}
    turns: list[Turn] = [[("time__get_current_time", {"timezone": "UTC"})], "I cannot tell the time."]
    message, model = await answer(turns, body, hub, stream, plan_for(body, hub, principal), principal=principal)
    assert message["finish_reason"] == "stop" and message["tool_calls"] is None
    assert message["content"].endswith("I cannot tell the time.")
    result = model.requests[-1]["messages"][-1]
    assert result["role"] == "tool" and result["tool_call_id"] == "call_1_0"
    assert result["content"].startswith("Error: The tool 'time__get_current_time' is not available: ")
    assert reason in result["content"]
    assert hub.calls == []


async def test_the_namespace_of_a_server_with_an_alias_is_its_alias() -> None:
    hub = FakeHub({"pg__list_tables": get_current_time, "pg__drop_table": get_current_time}, aliases={"pg": "shop"})
    body = {"model": "m", "messages": ASK, "tools": [mcp("shop", allowed_tools=["list_tables"])]}
    message, model = await answer([[("pg__drop_table", {})], "ok"], body, hub, False)
    assert message["finish_reason"] == "stop" and hub.calls == []
    assert "it is not among the tools offered" in model.requests[-1]["messages"][-1]["content"]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_call_into_the_alias_of_a_down_server_is_an_error_result_not_a_client_call(stream: bool) -> None:
    hub = FakeHub({"pg__list_tables": get_current_time}, aliases={"pg": "shop"}, down={"shop"})
    body = {"model": "m", "messages": ASK, "tools": [mcp("shop")]}
    message, model = await answer([[("pg__list_tables", {})], "ok"], body, hub, stream)
    assert message["finish_reason"] == "stop" and hub.calls == []
    assert "'shop' is not connected" in model.requests[-1]["messages"][-1]["content"]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_call_outside_every_hub_namespace_still_goes_to_the_client(stream: bool) -> None:
    body = {"model": "m", "messages": ASK, "tools": [mcp("time")]}
    message, _ = await answer([[("lookup_weather", {})]], body, time_hub(), stream)
    assert message["finish_reason"] == "tool_calls"
    assert [c["function"]["name"] for c in message["tool_calls"]] == ["lookup_weather"]


# -- 2. the same text in both modes ---------------------------------------------------------------------------------

CHECK: Turn = ("Let me check the time.", [("time__get_current_time", {"timezone": "UTC"})])


@pytest.mark.parametrize("stream", [False, True])
async def test_both_modes_give_every_rounds_text_separated_by_a_blank_line(stream: bool) -> None:
    body = {"model": "m", "messages": ASK, "tools": [mcp("time")]}
    message, _ = await answer([CHECK, "It is noon UTC."], body, time_hub(), stream)
    assert message["content"] == "Let me check the time.\n\nIt is noon UTC."


@pytest.mark.parametrize("stream", [False, True])
async def test_rounds_without_text_add_no_blank_lines_and_the_stop_message_is_its_own_paragraph(stream: bool) -> None:
    body = {"model": "m", "messages": ASK, "tools": [mcp("time")]}
    call = ("", [("time__get_current_time", {})])
    message, _ = await answer([call, CHECK, call], body, time_hub(), stream, max_rounds=3)
    assert message["content"] == "Let me check the time.\n\n" + STOPPED_TEXT.format(n=3)


@pytest.mark.parametrize("stream", [False, True])
async def test_the_client_call_message_carries_the_text_of_every_round(stream: bool) -> None:
    body = {"model": "m", "messages": ASK, "tools": [mcp("time"), CHART]}
    message, _ = await answer([CHECK, ("Here is a chart.", [("show_chart", {})])], body, time_hub(), stream)
    assert message["content"] == "Let me check the time.\n\nHere is a chart."
    assert message["finish_reason"] == "tool_calls"


# -- 3. hub rounds kept while the client runs its tools -------------------------------------------------------------

CHART_TURN: Turn = ("Here is a chart.", [("show_chart", {"kind": "bar"})])


def client_history(first: dict[str, Any]) -> list[dict[str, Any]]:
    """What an OpenAI client sends next: its history, the assistant message it got, and its tool's result."""
    calls = [{"id": c["id"], "type": "function", "function": c["function"]} for c in first["tool_calls"]]
    assistant = {"role": "assistant", "content": first["content"], "tool_calls": calls}
    return [*ASK, assistant, {"role": "tool", "tool_call_id": calls[0]["id"], "content": "chart shown"}]


@pytest.mark.parametrize("stream", [False, True])
async def test_hub_rounds_come_back_in_order_when_the_client_returns_its_tool_result(stream: bool) -> None:
    hub, memory = time_hub(), RoundMemory()
    body = {"model": "m", "messages": ASK, "tools": [mcp("time"), CHART]}
    plan = plan_for(body, hub)
    plan.memory = memory
    first, _ = await answer([CHECK, CHART_TURN], body, hub, stream, plan)
    assert [c["function"]["name"] for c in first["tool_calls"]] == ["show_chart"]
    again = {**body, "messages": client_history(first)}
    plan = plan_for(again, hub)
    plan.memory = memory
    second, model = await answer(["Done."], again, hub, stream, plan)
    sent = model.requests[0]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "assistant", "tool"]
    assert sent[1]["content"] == "Let me check the time."
    assert sent[1]["tool_calls"][0]["function"]["name"] == "time__get_current_time"
    assert sent[2] == {"role": "tool", "tool_call_id": "call_1_0", "content": get_current_time_text()}
    assert sent[3]["content"] == "Here is a chart."  # its own round's text, not the text of every round
    assert sent[3]["tool_calls"][0]["function"]["name"] == "show_chart"
    assert second["content"] == "Done."


def get_current_time_text() -> str:
    return '{"datetime": "2026-12-05T12:00:00+00:00"}'


async def test_kept_hub_rounds_are_restored_only_for_the_key_that_made_them() -> None:
    hub, memory = time_hub(), RoundMemory()
    body = {"model": "m", "messages": ASK, "tools": [mcp("time"), CHART]}
    alice, bob = Principal(key_id="alice"), Principal(key_id="bob")
    plan = plan_for(body, hub, alice)
    plan.memory = memory
    first, _ = await answer([CHECK, CHART_TURN], body, hub, False, plan, principal=alice)
    again = {**body, "messages": client_history(first)}
    plan = plan_for(again, hub, bob)
    plan.memory = memory
    _, model = await answer(["Done."], again, hub, False, plan, principal=bob)
    assert [m["role"] for m in model.requests[0]["messages"]] == ["user", "assistant", "tool"]


def rounds(owner: str, size: int) -> Any:
    return hub_rounds(owner, [{"role": "tool", "tool_call_id": "c", "content": "x" * size}], None, None)


def test_round_memory_is_bounded_in_count_bytes_and_time() -> None:
    now = [0.0]
    memory = RoundMemory(max_items=2, max_bytes=4000, ttl=10, clock=lambda: now[0])
    call = [{"role": "assistant", "content": None, "tool_calls": [{"id": "a"}]}]
    for key in ("a", "b", "c"):
        memory.remember([key], rounds("k", 10))
    assert len(memory) == 2 and memory.restore(call, "k") == call  # "a", the oldest, went first
    memory.remember(["big"], rounds("k", 2000))  # over a quarter of max_bytes: not kept at all
    assert len(memory) == 2
    memory.remember(["d"], rounds("k", 900))
    memory.remember(["e"], rounds("k", 900))
    memory.remember(["f"], rounds("k", 900))
    assert memory.bytes <= 4000
    restored = memory.restore([{"role": "assistant", "tool_calls": [{"id": "f"}]}], "k")
    assert len(restored) == 2
    now[0] = 11.0
    assert len(memory.restore([{"role": "assistant", "tool_calls": [{"id": "f"}]}], "k")) == 1  # expired


# -- 4. request ids on tool runs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_every_hub_tool_call_carries_the_request_id(stream: bool) -> None:
    hub = time_hub()
    body = {"model": "m", "messages": ASK, "tools": [mcp("time")]}
    await answer([CHECK, CHECK, "ok"], body, hub, stream, request_id="req-42")
    assert hub.request_ids == ["req-42", "req-42"]
    assert [json.loads(json.dumps(args)) for _, args in hub.calls] == [{"timezone": "UTC"}] * 2
