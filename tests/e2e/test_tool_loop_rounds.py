"""The tool loop end to end across rounds and turns: the openai SDK -> gateway -> a fake model that talks and calls
tools in one turn (tests/fakes/loop_upstream.py), with the real `mcp-server-time` as the MCP upstream over stdio.

Covers issue 10 items 1-5: a server still starting, a server down, one text in both modes, hub rounds kept while the
client runs its own tool, request ids on /spend/tool_calls, and the refusal of require_approval."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from openai.types.chat.chat_completion_message_function_tool_call import ChatCompletionMessageFunctionToolCall, Function

from hub.config import parse_config
from hub.server import build_app
from tests.e2e.conftest import MASTER_KEY
from tests.fakes.loop_upstream import LoopModel
from tests.support.hub import wait_for_tools
from tests.support.servers import serve_app

ASK: list[Any] = [{"role": "user", "content": "What time is it?"}]
TIME = {"type": "mcp", "server_label": "time", "require_approval": "never"}
CHART = {"type": "function", "function": {"name": "show_chart", "parameters": {"type": "object"}}}
RUN_TIME = (
    "import runpy, sys; sys.argv[1:] = ['--local-timezone', 'UTC']; "
    "runpy.run_module('mcp_server_time', run_name='__main__')"
)
TIME_SERVER = {"transport": "stdio", "command": sys.executable, "args": ["-c", RUN_TIME]}
DOWN_TIME_SERVER = {**TIME_SERVER, "args": ["-c", "raise SystemExit(3)"]}


def gated_time_server(gate: Path) -> dict[str, Any]:
    """The time server, starting only once `gate` exists: still starting for as long as the test wants."""
    wait = f"import os, time\nwhile not os.path.exists({str(gate)!r}):\n    time.sleep(0.01)\n"
    return {**TIME_SERVER, "args": ["-c", wait + RUN_TIME]}


@contextlib.contextmanager
def gateway(time_server: dict[str, Any], db: Path) -> Iterator[tuple[str, LoopModel]]:
    """The gateway with models `timer` and `charter` on a fresh `LoopModel`, and `time_server` as MCP server `time`."""
    model = LoopModel()
    with serve_app(model.app) as upstream:
        models = [
            {
                "model_name": name,
                "litellm_params": {"model": f"openai/{name}", "api_base": f"{upstream}/v1", "api_key": "sk-x"},
            }
            for name in ("timer", "charter")
        ]
        general = {"master_key": MASTER_KEY, "database_url": f"sqlite:///{db}"}
        config = {"model_list": models, "general_settings": general, "mcp_servers": {"time": time_server}}
        with serve_app(build_app(parse_config(config, {}))) as url:
            yield url, model


@pytest.fixture(scope="module")
def ready(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, LoopModel]]:
    with gateway(TIME_SERVER, tmp_path_factory.mktemp("rounds") / "hub.db") as (url, model):
        wait_for_tools(url, {"time"}, MASTER_KEY)
        yield url, model


def sdk(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=30)


def ask(url: str, stream: bool, **params: Any) -> tuple[str | None, str | None, list[Any], dict[str, Any]]:
    """(content, finish_reason, tool calls, toolhub record) of one chat completion, streamed or not."""
    with sdk(url) as client:
        if stream:
            return _collect(client.chat.completions.create(stream=True, **params))
        completion = client.chat.completions.create(**params)
    choice = completion.choices[0]
    record = (completion.model_extra or {}).get("toolhub", {})
    return choice.message.content, choice.finish_reason, list(choice.message.tool_calls or []), record


def _collect(chunks: Any) -> tuple[str | None, str | None, list[Any], dict[str, Any]]:
    """The same four from the chunks of a stream, as a client puts them together."""
    text, finish, record = "", None, {}
    calls: dict[int, ChatCompletionMessageFunctionToolCall] = {}
    for chunk in chunks:
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        text += choice.delta.content or ""
        for delta in choice.delta.tool_calls or []:
            empty = Function(name="", arguments="")
            call = calls.setdefault(
                delta.index, ChatCompletionMessageFunctionToolCall(id="", type="function", function=empty)
            )
            call.id += delta.id or ""
            call.function.name += (delta.function and delta.function.name) or ""
            call.function.arguments += (delta.function and delta.function.arguments) or ""
        if choice.finish_reason:
            finish, record = choice.finish_reason, (chunk.model_extra or {}).get("toolhub", {})
    return text or None, finish, [calls[i] for i in sorted(calls)], record


# -- 1. a server still starting is waited for; a down server's tool is an error result --------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_a_request_right_after_start_waits_for_the_server_still_starting_and_gets_its_tools(
    stream: bool, tmp_path: Path
) -> None:
    gate = tmp_path / "start"
    with gateway(gated_time_server(gate), tmp_path / "hub.db") as (url, _):
        status = httpx2.get(f"{url}/mcp/tools/list", headers={"Authorization": f"Bearer {MASTER_KEY}"}).json()
        assert not [t for t in status["tools"] if t["server"] == "time"]  # the request below comes while it starts
        opener = threading.Timer(0.5, gate.touch)  # it starts while the request waits (or, on a slow machine, before)
        opener.start()
        try:
            content, finish, calls, record = ask(url, stream, model="timer", messages=ASK, tools=[TIME])
        finally:
            opener.cancel()
            gate.touch()
    assert (content, finish, calls) == ("Let me check the time.\n\nIt is noon UTC.", "stop", [])
    assert [(c["name"], c["is_error"]) for c in record["tool_calls"]] == [("time__get_current_time", False)]


@pytest.mark.parametrize("stream", [False, True])
def test_a_call_to_the_tool_of_a_down_server_is_an_error_the_model_reads_not_a_call_for_the_client(
    stream: bool, tmp_path: Path
) -> None:
    with gateway(DOWN_TIME_SERVER, tmp_path / "hub.db") as (url, model):
        content, finish, calls, record = ask(url, stream, model="timer", messages=ASK, tools=[TIME, CHART])
        offered = [t["function"]["name"] for t in model.requests[0]["tools"]]
    assert finish == "stop" and calls == []
    assert offered == ["show_chart"]
    assert content is not None and content.startswith("Let me check the time.\n\nThe time tool failed: Error: ")
    assert "'time__get_current_time' is not available: the MCP server 'time' is not connected" in content
    assert [(c["name"], c["is_error"]) for c in record["tool_calls"]] == [("time__get_current_time", True)]


@pytest.mark.parametrize("stream", [False, True])
def test_a_call_to_a_tool_the_key_may_not_use_is_an_error_the_model_reads(
    ready: tuple[str, LoopModel], stream: bool
) -> None:
    url = ready[0]
    permission = {"mcp_servers": ["time"], "mcp_tool_permissions": {"time": ["convert_time"]}}
    body = {"models": ["timer"], "object_permission": permission}
    key = httpx2.post(f"{url}/key/generate", headers={"Authorization": f"Bearer {MASTER_KEY}"}, json=body).json()["key"]
    with openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=30) as client:
        if stream:
            content, finish, calls, _ = _collect(
                client.chat.completions.create(model="timer", messages=ASK, tools=[TIME], stream=True)  # pyright: ignore[reportArgumentType]
            )
        else:
            choice = client.chat.completions.create(model="timer", messages=ASK, tools=[TIME]).choices[0]  # pyright: ignore[reportArgumentType]
            content, finish, calls = choice.message.content, choice.finish_reason, choice.message.tool_calls or []
    assert (finish, list(calls)) == ("stop", [])
    assert content == (
        "Let me check the time.\n\nThe time tool failed: Error: The tool 'time__get_current_time' is not available: "
        "it is not among the tools offered in this request."
    )


# -- 2. one text in both modes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_both_modes_give_the_text_of_every_round_separated_by_a_blank_line(
    ready: tuple[str, LoopModel], stream: bool
) -> None:
    content, finish, _, record = ask(ready[0], stream, model="timer", messages=ASK, tools=[TIME])
    assert (content, finish) == ("Let me check the time.\n\nIt is noon UTC.", "stop")
    assert record["rounds"] == 2


# -- 3. hub rounds kept while the client runs its own tool ----------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_the_hub_round_comes_back_before_the_client_call_when_the_client_sends_its_result(
    ready: tuple[str, LoopModel], stream: bool
) -> None:
    url, model = ready
    content, finish, calls, _ = ask(url, stream, model="charter", messages=ASK, tools=[TIME, CHART])
    assert (content, finish) == ("Let me check the time.\n\nHere is a chart.", "tool_calls")
    assert [c.function.name for c in calls] == ["show_chart"]
    assistant = {"role": "assistant", "content": content, "tool_calls": [c.model_dump() for c in calls]}
    history = [*ASK, assistant, {"role": "tool", "tool_call_id": calls[0].id, "content": "chart shown"}]
    content, finish, calls, _ = ask(url, stream, model="charter", messages=history, tools=[TIME, CHART])
    assert (content, finish) == ("Done.", "stop")
    sent = model.requests[-1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "assistant", "tool"]
    assert (sent[1]["content"], sent[1]["tool_calls"][0]["function"]["name"]) == (
        "Let me check the time.",
        "time__get_current_time",
    )
    assert sent[2]["tool_call_id"] == sent[1]["tool_calls"][0]["id"] and '"timezone": "UTC"' in sent[2]["content"]
    assert sent[3]["content"] == "Here is a chart." and sent[4]["content"] == "chart shown"


# -- 4. the request id on /spend/tool_calls --------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_spend_tool_calls_rows_carry_the_request_id_and_the_master_key(
    ready: tuple[str, LoopModel], stream: bool
) -> None:
    url = ready[0]
    with sdk(url) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="timer",
            messages=ASK,
            tools=[TIME],
            stream=stream,  # pyright: ignore[reportArgumentType]
        )
        request_id = raw.headers["x-request-id"]
        if stream:
            list(raw.parse())  # pyright: ignore[reportArgumentType]
    rows = httpx2.get(f"{url}/spend/tool_calls", headers={"Authorization": f"Bearer {MASTER_KEY}"}).json()["data"]
    mine = [(r["server"], r["tool"], r["key_hash"]) for r in rows if r["request_id"] == request_id]
    assert mine == [("time", "get_current_time", "master")]


# -- 5. require_approval ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_require_approval_always_is_a_400_that_names_the_responses_api(
    ready: tuple[str, LoopModel], stream: bool
) -> None:
    entry = {**TIME, "require_approval": "always"}
    with sdk(ready[0]) as client, pytest.raises(openai.BadRequestError) as exc_info:
        client.chat.completions.create(model="timer", messages=ASK, tools=[entry], stream=stream)  # pyright: ignore[reportArgumentType, reportCallIssue]
    assert (exc_info.value.code, exc_info.value.param) == ("approval_not_supported", "tools[0].require_approval")
    assert "Responses API" in exc_info.value.message
