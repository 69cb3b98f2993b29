"""The tool loop in memory: a scripted model, a hub of Python tools."""

from __future__ import annotations

import json
from typing import Any

import anyio
import mcp_types
import pytest

from hub.accounts.auth import MASTER, Principal
from hub.errors import BadRequest
from hub.loop.plan import LoopPlan, plan_tool_loop
from hub.loop.run import STOPPED_TEXT, LoopObserver, LoopSettings, complete_with_tools
from hub.loop.stream import RoundStream, stream_with_tools
from hub.loop.tools import ToolRun, result_text, run_calls
from hub.mcp.errors import UnknownTool
from providers.base import ChatRequest, Deployment, ProviderError
from tests.fakes.scripted import FakeHub, ScriptedProvider, text_result

pytestmark = pytest.mark.anyio

DEPLOYMENT = Deployment(provider="openai", model="scripted", api_base="http://unused")
ASK = [{"role": "user", "content": "What tables are there?"}]
MCP_ALL = {"type": "mcp", "server_label": "*", "require_approval": "never"}
CLIENT_FN = {"type": "function", "function": {"name": "show_chart", "parameters": {"type": "object"}}}


async def list_tables(args: dict[str, Any]) -> mcp_types.CallToolResult:
    return text_result('["users", "orders"]')


async def describe_table(args: dict[str, Any]) -> mcp_types.CallToolResult:
    return text_result(f"{args['table']}: id integer, name text")


async def failing(args: dict[str, Any]) -> mcp_types.CallToolResult:
    return text_result("relation does not exist", is_error=True)


def db_hub(**extra: Any) -> FakeHub:
    return FakeHub({"db__list_tables": list_tables, "db__describe_table": describe_table, **extra})


def chat(body: dict[str, Any]) -> ChatRequest:
    return ChatRequest(body=body, deployment=DEPLOYMENT)


def plan_for(body: dict[str, Any], hub: FakeHub, principal: Principal = MASTER) -> LoopPlan:
    plan = plan_tool_loop(body, (), hub, principal)
    assert plan is not None
    return plan


SCRIPT = [[("db__list_tables", {})], [("db__describe_table", {"table": "users"})], "There are users and orders."]


async def test_loop_runs_tools_until_the_model_answers() -> None:
    hub, model = db_hub(), ScriptedProvider(list(SCRIPT))
    body = {"model": "m", "messages": ASK, "tools": [MCP_ALL]}
    completion = await complete_with_tools(model, chat(body), plan_for(body, hub), hub, MASTER, LoopSettings())
    assert completion["choices"][0]["message"]["content"] == "There are users and orders."
    assert completion["usage"] == {"prompt_tokens": 30, "completion_tokens": 15, "total_tokens": 45}
    assert [(c["name"], c["round"], c["is_error"]) for c in completion["toolhub"]["tool_calls"]] == [
        ("db__list_tables", 1, False),
        ("db__describe_table", 2, False),
    ]
    assert hub.calls == [("db__list_tables", {}), ("db__describe_table", {"table": "users"})]
    last = model.requests[-1]["messages"]
    assert [m["role"] for m in last] == ["user", "assistant", "tool", "assistant", "tool"]
    assert last[-1] == {"role": "tool", "tool_call_id": "call_2_0", "content": "users: id integer, name text"}
    assert {t["function"]["name"] for t in model.requests[0]["tools"]} == {"db__list_tables", "db__describe_table"}


async def test_calls_of_one_round_run_concurrently() -> None:
    met = anyio.Event()

    async def first(args: dict[str, Any]) -> mcp_types.CallToolResult:
        await met.wait()  # only the second call, running at the same time, can set it
        return text_result("first")

    async def second(args: dict[str, Any]) -> mcp_types.CallToolResult:
        met.set()
        return text_result("second")

    hub = FakeHub({"a__first": first, "a__second": second})
    model = ScriptedProvider([[("a__first", {}), ("a__second", {})], "done"])
    body = {"model": "m", "messages": ASK, "tools": [MCP_ALL]}
    with anyio.fail_after(5):
        completion = await complete_with_tools(model, chat(body), plan_for(body, hub), hub, MASTER, LoopSettings())
    assert [c["is_error"] for c in completion["toolhub"]["tool_calls"]] == [False, False]


async def test_failing_tools_bad_arguments_and_timeouts_go_back_to_the_model_as_errors() -> None:
    async def hang(args: dict[str, Any]) -> mcp_types.CallToolResult:
        await anyio.sleep_forever()
        raise AssertionError

    hub = FakeHub({"db__broken": failing, "db__hang": hang}, timeout=0.05)
    model = ScriptedProvider([[("db__broken", {}), ("db__hang", {})], "sorry"])
    body = {"model": "m", "messages": ASK, "tools": [MCP_ALL]}
    completion = await complete_with_tools(model, chat(body), plan_for(body, hub), hub, MASTER, LoopSettings())
    tool_messages = [m for m in model.requests[-1]["messages"] if m["role"] == "tool"]
    assert tool_messages[0]["content"] == "Error: relation does not exist"
    assert tool_messages[1]["content"] == "Error: The tool did not answer within 0.05 s."
    assert hub.cancelled == 1
    assert completion["choices"][0]["message"]["content"] == "sorry"


async def test_loop_stops_at_max_rounds_with_a_clear_message() -> None:
    hub = db_hub()
    model = ScriptedProvider([[("db__list_tables", {})]] * 5)
    body = {"model": "m", "messages": ASK, "tools": [MCP_ALL]}
    completion = await complete_with_tools(
        model, chat(body), plan_for(body, hub), hub, MASTER, LoopSettings(max_rounds=3)
    )
    assert completion["choices"][0]["message"]["content"] == STOPPED_TEXT.format(n=3)
    assert completion["toolhub"]["stopped"] == "max_tool_rounds"
    assert model.calls == 3 and len(hub.calls) == 3


async def test_client_tool_call_ends_the_loop_and_hub_calls_of_that_turn_are_not_run() -> None:
    hub = db_hub()
    model = ScriptedProvider([[("db__list_tables", {}), ("show_chart", {"x": 1})]])
    body = {"model": "m", "messages": ASK, "tools": [MCP_ALL, CLIENT_FN]}
    completion = await complete_with_tools(model, chat(body), plan_for(body, hub), hub, MASTER, LoopSettings())
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert [c["function"]["name"] for c in choice["message"]["tool_calls"]] == ["show_chart"]
    assert hub.calls == []


@pytest.mark.parametrize(
    "require_approval",
    ["always", {"always": {"tool_names": ["describe_table"]}}, {}, {"always": ["list_tables"], "never": ["x"]}],
)
def test_an_entry_that_needs_approval_is_refused_with_a_400_naming_the_responses_api(require_approval: Any) -> None:
    entry = {"type": "mcp", "server_label": "db", "require_approval": require_approval}
    with pytest.raises(BadRequest) as exc_info:
        plan_tool_loop({"tools": [entry]}, (), db_hub(), MASTER)
    assert (exc_info.value.code, exc_info.value.param) == ("approval_not_supported", "tools[0].require_approval")
    assert "Responses API" in exc_info.value.message


def test_require_approval_never_for_some_tools_offers_only_those() -> None:
    entry = {"type": "mcp", "server_label": "db", "require_approval": {"never": {"tool_names": ["list_tables"]}}}
    assert set(plan_for({"tools": [entry]}, db_hub()).hub_tools) == {"db__list_tables"}


async def test_large_results_are_cut_with_a_visible_marker() -> None:
    async def big(args: dict[str, Any]) -> mcp_types.CallToolResult:
        return text_result("x" * 5000)

    hub = FakeHub({"db__big": big})
    model = ScriptedProvider([[("db__big", {})], "ok"])
    body = {"model": "m", "messages": ASK, "tools": [MCP_ALL]}
    completion = await complete_with_tools(
        model, chat(body), plan_for(body, hub), hub, MASTER, LoopSettings(max_result_chars=100)
    )
    content = model.requests[-1]["messages"][-1]["content"]
    assert content == "x" * 100 + "\n[Toolhub cut this tool result: 4900 of 5000 characters removed]"
    assert completion["toolhub"]["tool_calls"][0]["truncated_chars"] == 4900


async def collect(body: dict[str, Any], hub: FakeHub, model: ScriptedProvider, **settings: Any) -> list[dict[str, Any]]:
    items = stream_with_tools(model, chat(body), plan_for(body, hub), hub, MASTER, LoopSettings(**settings))
    return [chunk async for chunk in items if not isinstance(chunk, bytes)]


async def test_stream_shows_one_continuous_answer_without_hub_calls() -> None:
    hub, model = db_hub(), ScriptedProvider(list(SCRIPT))
    chunks = await collect({"model": "m", "messages": ASK, "tools": [MCP_ALL]}, hub, model)
    assert {c["id"] for c in chunks} == {"chatcmpl-1"}
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert sum("role" in d for d in deltas) == 1
    assert not any("tool_calls" in d for d in deltas)
    text = "".join(d.get("content") or "" for d in deltas)
    assert text == "Round 1. \n\nRound 2. \n\nThere are users and orders."
    finish = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert len(finish) == 1 and finish[0]["choices"][0]["finish_reason"] == "stop"
    assert [c["name"] for c in finish[0]["toolhub"]["tool_calls"]] == ["db__list_tables", "db__describe_table"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 45


async def test_stream_forwards_client_calls_reindexed_from_zero() -> None:
    hub = db_hub()
    model = ScriptedProvider([[("db__list_tables", {}), ("show_chart", {"x": 1})]])
    chunks = await collect({"model": "m", "messages": ASK, "tools": [MCP_ALL, CLIENT_FN]}, hub, model)
    calls = [call for c in chunks if c["choices"] for call in c["choices"][0]["delta"].get("tool_calls", [])]
    assert {call["index"] for call in calls} == {0}
    assert calls[0]["function"]["name"] == "show_chart"
    assert json.loads("".join(c["function"]["arguments"] for c in calls)) == {"x": 1}
    assert [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]][0]["choices"][0][
        "finish_reason"
    ] == "tool_calls"
    assert hub.calls == []


async def test_stream_says_which_tools_run_in_comment_lines() -> None:
    hub, model = db_hub(), ScriptedProvider(list(SCRIPT))
    body = {"model": "m", "messages": ASK, "tools": [MCP_ALL]}
    items = stream_with_tools(model, chat(body), plan_for(body, hub), hub, MASTER, LoopSettings())
    comments = [item async for item in items if isinstance(item, bytes)]
    assert comments == [b": toolhub running db__list_tables\n\n", b": toolhub running db__describe_table\n\n"]


async def test_stream_at_max_rounds_ends_with_the_stop_message() -> None:
    hub, model = db_hub(), ScriptedProvider([[("db__list_tables", {})]] * 3)
    chunks = await collect({"model": "m", "messages": ASK, "tools": [MCP_ALL]}, hub, model, max_rounds=2)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text.endswith(STOPPED_TEXT.format(n=2))


async def test_cancelling_the_stream_cancels_running_tools() -> None:
    started = anyio.Event()

    async def hang(args: dict[str, Any]) -> mcp_types.CallToolResult:
        started.set()
        await anyio.sleep_forever()
        raise AssertionError

    hub = FakeHub({"db__hang": hang}, timeout=60)
    model = ScriptedProvider([[("db__hang", {})], "never"])
    body = {"model": "m", "messages": ASK, "tools": [MCP_ALL]}
    async with anyio.create_task_group() as tg:
        tg.start_soon(collect, body, hub, model)
        with anyio.fail_after(5):
            await started.wait()
        tg.cancel_scope.cancel()
    assert hub.cancelled == 1


def test_model_defaults_give_tools_without_any_request_field() -> None:
    plan = plan_tool_loop({"model": "m", "messages": ASK}, ("db",), db_hub(), MASTER)
    assert plan is not None and set(plan.hub_tools) == {"db__list_tables", "db__describe_table"}
    assert plan_tool_loop({"model": "m", "messages": ASK}, (), db_hub(), MASTER) is None


def test_allowed_tools_filter_by_original_or_prefixed_name() -> None:
    entry = {"type": "mcp", "server_label": "db", "allowed_tools": ["list_tables"]}
    assert set(plan_for({"tools": [entry]}, db_hub()).hub_tools) == {"db__list_tables"}


def test_litellm_server_url_names_a_server() -> None:
    entry = {"type": "mcp", "server_url": "litellm_proxy/mcp/db", "require_approval": "never"}
    assert set(plan_for({"tools": [entry]}, db_hub()).hub_tools) == {"db__list_tables", "db__describe_table"}


@pytest.mark.parametrize(
    ("tools", "param"),
    [
        ([{"type": "mcp", "server_label": "nope"}], "tools[0].server_label"),
        ([{"type": "mcp", "server_label": "db", "allowed_tools": "list_tables"}], "tools[0].allowed_tools"),
        ([{"type": "mcp", "require_approval": "sometimes"}], "tools[0].require_approval"),
        ([{"type": "mcp", "server_url": "https://elsewhere.example/mcp"}], "tools[0].server_url"),
        ([MCP_ALL, {"type": "function", "function": {"name": "db__list_tables"}}], "tools"),
    ],
)
def test_bad_mcp_entries_are_400_naming_the_param(tools: list[dict[str, Any]], param: str) -> None:
    with pytest.raises(BadRequest) as exc_info:
        plan_tool_loop({"tools": tools}, (), db_hub(), MASTER)
    assert exc_info.value.param == param


def test_a_gateway_without_mcp_servers_refuses_mcp_entries() -> None:
    with pytest.raises(BadRequest) as exc_info:
        plan_tool_loop({"tools": [MCP_ALL]}, (), None, MASTER)
    assert exc_info.value.code == "mcp_not_configured"


@pytest.mark.parametrize("stream", [False, True])
async def test_rounds_are_accounted_as_they_happen_even_when_a_later_round_fails(stream: bool) -> None:
    hub = db_hub()
    model = ScriptedProvider([[("db__list_tables", {})]])  # round 2 fails: the script is exhausted
    body = {"model": "m", "messages": ASK, "tools": [MCP_ALL]}
    usage: list[dict[str, Any]] = []
    runs: list[ToolRun] = []
    observer = LoopObserver(usage=usage.append, runs=runs.extend)
    with pytest.raises(ProviderError):
        if stream:
            items = stream_with_tools(model, chat(body), plan_for(body, hub), hub, MASTER, LoopSettings(), observer)
            async for _ in items:
                pass
        else:
            await complete_with_tools(model, chat(body), plan_for(body, hub), hub, MASTER, LoopSettings(), observer)
    assert usage == [{"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}]
    assert [run.name for run in runs] == ["db__list_tables"]


def test_a_streamed_call_whose_name_comes_after_its_id_is_classified_by_the_name() -> None:
    hub = db_hub()
    body = {"model": "m", "messages": ASK, "tools": [MCP_ALL, CLIENT_FN]}
    round_ = RoundStream(plan_for(body, hub))
    assert round_.take_calls([{"index": 0, "id": "call_1", "function": {"arguments": ""}}]) == []
    assert round_.take_calls([{"index": 0, "function": {"name": "db__list_tables", "arguments": "{}"}}]) == []
    assert round_.take_calls([{"index": 1, "id": "call_2", "type": "function"}]) == []
    shown = round_.take_calls([{"index": 1, "function": {"name": "show_chart", "arguments": '{"a"'}}])
    more = round_.take_calls([{"index": 1, "function": {"arguments": ": 1}"}}])
    assert shown == [
        {"index": 0, "id": "call_2", "type": "function", "function": {"name": "show_chart", "arguments": '{"a"'}}
    ]
    assert more == [{"index": 0, "function": {"arguments": ": 1}"}}]
    assert [c["function"] for c in round_.hub_calls] == [{"name": "db__list_tables", "arguments": "{}"}]


def test_tool_results_render_every_content_kind_for_the_model() -> None:
    result = mcp_types.CallToolResult(
        content=[
            mcp_types.TextContent(type="text", text="rows: 2"),
            mcp_types.ImageContent(type="image", data="aGk=", mime_type="image/png"),
            mcp_types.EmbeddedResource(
                type="resource", resource=mcp_types.TextResourceContents(uri="file:///a.txt", text="inside")
            ),
            mcp_types.EmbeddedResource(
                type="resource", resource=mcp_types.BlobResourceContents(uri="file:///b.bin", blob="AA==")
            ),
        ]
    )
    assert (
        result_text(result) == "rows: 2\n[image: image/png, not shown to the model]\ninside\n[resource file:///b.bin]"
    )
    structured = mcp_types.CallToolResult(content=[], structured_content={"n": 1})
    assert result_text(structured) == '{"n":1}'


async def test_bad_arguments_and_unknown_tools_go_back_to_the_model_as_errors() -> None:
    async def gone(args: dict[str, Any]) -> mcp_types.CallToolResult:
        raise UnknownTool("Unknown tool: 'db__gone'.", tool="db__gone")

    hub = FakeHub({"db__list_tables": list_tables, "db__gone": gone})
    model = ScriptedProvider([[("db__gone", {})], "ok"])
    body = {"model": "m", "messages": ASK, "tools": [MCP_ALL]}
    await complete_with_tools(model, chat(body), plan_for(body, hub), hub, MASTER, LoopSettings())
    assert (
        model.requests[-1]["messages"][-1]["content"]
        == "Error: The tool could not be called: Unknown tool: 'db__gone'."
    )
    plan = plan_for(body, hub)
    [run] = await run_calls(
        [{"id": "c1", "function": {"name": "db__list_tables", "arguments": "[1, 2]"}}], plan, hub, MASTER, 1, 1000
    )
    assert run.is_error and run.content.startswith("Error: The arguments are not a valid JSON object")
