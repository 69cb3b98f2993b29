"""Errors about a chat message after hub rounds the gateway put back (hub/loop/memory.py): a conversation whose last
turn ran the real `mcp-server-time` and then called the client's `show_chart` comes back with the client's result and
a later message, and the upstream refuses one message of the round it is given. The client's message is named by its
index in the client's own request on all three APIs (the restored rounds shift it in the chat body); a message of
the restored rounds is named as the gateway's, with no `param`. Official SDKs over loopback, streamed and not.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hub.api.locations import ADDED
from hub.config import parse_config
from hub.server import build_app
from tests.e2e.test_tool_loop_rounds import TIME_SERVER
from tests.fakes.loop_upstream import USAGE, LoopModel
from tests.support.hub import wait_for_tools
from tests.support.servers import serve_app

MASTER_KEY = "sk-toolhub-restored-locations"
ASK: Any = [{"role": "user", "content": "What time is it?"}]
TIME: Any = {"type": "mcp", "server_label": "time", "require_approval": "never"}
CHART: Any = {"type": "function", "function": {"name": "show_chart", "parameters": {"type": "object"}}}
SERVERS = {"mcp_servers": [{"type": "url", "url": "http://127.0.0.1:9/mcp", "name": "time"}]}
HUB = "WHERE_IS_THE_TIME_CALL"
"""A later message with this asks the upstream to refuse the restored hub round's call to the time tool."""


class RefusingModel(LoopModel):
    """`charter` (time tool, then `show_chart`), but refusing a round that holds a message saying BAD (that one), HUB
    (the assistant message that called the time tool) or LATE (that one, once a hub tool ran after it; until then it
    calls the time tool), with OpenAI's 400 naming `messages[k]`."""

    async def chat(self, request: Request) -> Response:
        body = await request.json()
        said = [json.dumps(m) for m in body["messages"]]
        if _marked(said, HUB) is not None:
            return _refused(max(k for k, s in enumerate(said) if "time__get_current_time" in s and "tool_calls" in s))
        if (k := _marked(said, "BAD")) is not None:
            return _refused(k)
        if (k := _marked(said, "LATE")) is not None:
            return _refused(k) if any('"role": "tool"' in s for s in said[k:]) else _time_call(body)
        return await super().chat(request)


def _marked(said: list[str], word: str) -> int | None:
    return next((k for k, s in enumerate(said) if word in s), None)


def _refused(k: int) -> Response:
    error = {"message": f"Invalid 'messages[{k}].content': refused.", "type": "invalid_request_error",
             "param": f"messages.[{k}].content", "code": "invalid_value"}  # fmt: skip
    return JSONResponse({"error": error}, 400)


def _time_call(body: Any) -> Response:
    """A call to the hub's time tool, streamed or not."""
    call = {"id": "call_late", "type": "function", "function": {"name": "time__get_current_time", "arguments": "{}"}}
    base = {"id": "c", "created": 1, "model": "charter"}
    if not body.get("stream"):
        choice = {"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                  "finish_reason": "tool_calls"}  # fmt: skip
        return JSONResponse({**base, "object": "chat.completion", "choices": [choice], "usage": USAGE})
    deltas = [({"role": "assistant", "tool_calls": [{"index": 0, **call}]}, None), ({}, "tool_calls")]
    chunks = [{**base, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": d, "finish_reason": f}]}
              for d, f in deltas]  # fmt: skip
    events = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks)
    return Response(events + b"data: [DONE]\n\n", media_type="text/event-stream")


@pytest.fixture(scope="module")
def model() -> RefusingModel:
    return RefusingModel()


@pytest.fixture(scope="module")
def gateway_url(model: RefusingModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database: Path = tmp_path_factory.mktemp("restored-locations") / "hub.db"
    with serve_app(model.app) as upstream:
        params = {"model": "openai/charter", "api_base": f"{upstream}/v1", "api_key": "sk-x"}
        general = {"master_key": MASTER_KEY, "database_url": f"sqlite:///{database}"}
        config = {"model_list": [{"model_name": "charter", "litellm_params": params}], "general_settings": general,
                  "mcp_servers": {"time": TIME_SERVER}}  # fmt: skip
        with serve_app(build_app(parse_config(config, {}))) as url:
            wait_for_tools(url, {"time"}, MASTER_KEY)
            yield url


def _chat_history(client: openai.OpenAI) -> list[Any]:
    """The client's side of a turn that ran the time tool on the gateway and then called `show_chart`."""
    first = client.chat.completions.create(model="charter", messages=ASK, tools=[TIME, CHART])
    message = first.choices[0].message
    assert [c.function.name for c in message.tool_calls or [] if c.type == "function"] == ["show_chart"]
    assistant = {"role": "assistant", "content": message.content,
                 "tool_calls": [c.model_dump() for c in message.tool_calls or []]}  # fmt: skip
    call_id = (message.tool_calls or [])[0].id
    return [*ASK, assistant, {"role": "tool", "tool_call_id": call_id, "content": "chart shown"}]


@pytest.mark.parametrize("said", ["BAD", "LATE"])
@pytest.mark.parametrize("stream", [False, True])
def test_chat_completions_names_the_clients_index_after_a_restored_round(
    client: openai.OpenAI, stream: bool, said: str
) -> None:
    history = [*_chat_history(client), {"role": "user", "content": said}]
    if stream:  # LATE: an error event after the first round's stream
        with pytest.raises(openai.APIError) as caught:
            for _ in client.chat.completions.create(
                model="charter", messages=history, tools=[TIME, CHART], stream=True
            ):
                pass
    else:
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model="charter", messages=history, tools=[TIME, CHART])
        assert caught.value.param == "messages.[3].content"
    assert caught.value.message.endswith("Invalid 'messages[3].content': refused."), caught.value.message


@pytest.mark.parametrize("stream", [False, True])
def test_chat_completions_names_a_restored_rounds_message_as_the_gateways(client: openai.OpenAI, stream: bool) -> None:
    history = [*_chat_history(client), {"role": "user", "content": HUB}]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="charter", messages=history, tools=[TIME, CHART], stream=stream)
    assert caught.value.param is None
    assert caught.value.message.endswith(f"Invalid '{ADDED}': refused."), caught.value.message


def _responses_turn(client: openai.OpenAI) -> tuple[str, str]:
    """(response id, call id) of a turn that ran the time tool on the gateway and then called `show_chart`."""
    chart: Any = {"type": "function", "name": "show_chart", "parameters": {"type": "object"}}
    first = client.responses.create(model="charter", input="What time is it?", tools=[TIME, chart])
    calls = [item for item in first.output if item.type == "function_call"]
    assert [c.name for c in calls] == ["show_chart"]
    return first.id, calls[0].call_id


@pytest.mark.parametrize(("said", "param", "words"), [
    ("BAD", "input[1].content", "Invalid 'input[1].content': refused."),
    (HUB, None, f"Invalid '{ADDED}': refused."),
])  # fmt: skip
def test_responses_names_the_clients_item_after_a_restored_round(
    client: openai.OpenAI, said: str, param: str | None, words: str
) -> None:
    previous, call_id = _responses_turn(client)
    tools: Any = [TIME, {"type": "function", "name": "show_chart", "parameters": {"type": "object"}}]
    items: Any = [{"type": "function_call_output", "call_id": call_id, "output": "chart shown"},
                  {"role": "user", "content": said}]  # fmt: skip
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="charter", previous_response_id=previous, input=items, tools=tools)
    assert caught.value.param == param
    assert caught.value.message.endswith(words), caught.value.message


def test_a_streamed_response_failing_after_a_hub_round_names_the_clients_item_after_a_restored_one(
    client: openai.OpenAI,
) -> None:
    previous, call_id = _responses_turn(client)
    tools: Any = [TIME, {"type": "function", "name": "show_chart", "parameters": {"type": "object"}}]
    items: Any = [{"type": "function_call_output", "call_id": call_id, "output": "chart shown"},
                  {"role": "user", "content": "LATE"}]  # fmt: skip
    events = list(client.responses.create(model="charter", previous_response_id=previous, input=items, tools=tools,
                                          stream=True))  # fmt: skip
    failed = events[-1]
    assert failed.type == "response.failed" and failed.response.error is not None
    assert failed.response.error.message.endswith("Invalid 'input[1].content': refused."), failed.response.error


@pytest.mark.parametrize(("said", "param", "words"), [
    ("BAD", "input[1].content", "Invalid 'input[1].content': refused."),
    (HUB, None, f"Invalid '{ADDED}': refused."),
])  # fmt: skip
def test_a_streamed_response_refused_before_its_first_event_names_the_clients_item(
    client: openai.OpenAI, said: str, param: str | None, words: str
) -> None:
    """Refused before the stream started, the answer is a plain 400, mapped as the non-streamed one is."""
    previous, call_id = _responses_turn(client)
    tools: Any = [TIME, {"type": "function", "name": "show_chart", "parameters": {"type": "object"}}]
    items: Any = [{"type": "function_call_output", "call_id": call_id, "output": "chart shown"},
                  {"role": "user", "content": said}]  # fmt: skip
    with pytest.raises(openai.BadRequestError) as caught:
        list(client.responses.create(model="charter", previous_response_id=previous, input=items, tools=tools,
                                     stream=True))  # fmt: skip
    assert caught.value.param == param
    assert caught.value.message.endswith(words), caught.value.message


@pytest.mark.parametrize(("said", "words"), [
    ("BAD", "Invalid 'messages.2.content': refused."),
    (HUB, f"Invalid '{ADDED}': refused."),
])  # fmt: skip
@pytest.mark.parametrize("stream", [False, True])
def test_messages_names_the_clients_block_after_a_restored_round(
    claude: anthropic.Anthropic, said: str, words: str, stream: bool
) -> None:
    tools: Any = [{"name": "show_chart", "input_schema": {"type": "object"}}]
    first = claude.messages.create(model="charter", max_tokens=50, messages=ASK, tools=tools, extra_body=SERVERS)
    uses = [block for block in first.content if block.type == "tool_use"]
    assert [u.name for u in uses] == ["show_chart"]
    answer: Any = [{"type": "tool_result", "tool_use_id": uses[0].id, "content": "chart shown"},
                   {"type": "text", "text": said}]  # fmt: skip
    told = [b.model_dump() for b in first.content if b.type in ("text", "tool_use")]  # not the mcp_ blocks
    history: Any = [*ASK, {"role": "assistant", "content": told},
                    {"role": "user", "content": answer}]  # fmt: skip
    ask: dict[str, Any] = {"model": "charter", "max_tokens": 50, "messages": history, "tools": tools,
                           "extra_body": SERVERS}  # fmt: skip
    if stream:
        with pytest.raises(anthropic.APIStatusError) as caught, claude.messages.stream(**ask) as events:
            events.until_done()
    else:
        with pytest.raises(anthropic.BadRequestError) as caught:
            claude.messages.create(**ask)
    message: str = caught.value.body["error"]["message"]  # pyright: ignore[reportIndexIssue, reportUnknownVariableType, reportOptionalSubscript]
    assert message.endswith(words), message


def test_messages_sending_the_hub_rounds_back_gives_the_upstream_each_hub_call_once(
    claude: anthropic.Anthropic, model: RefusingModel
) -> None:
    tools: Any = [{"name": "show_chart", "input_schema": {"type": "object"}}]
    first = claude.messages.create(model="charter", max_tokens=50, messages=ASK, tools=tools, extra_body=SERVERS)
    uses = [block for block in first.content if block.type == "tool_use"]
    echoed = [b.model_dump(exclude_none=True) for b in first.content]  # the mcp_tool_use and mcp_tool_result too
    answer: Any = [{"type": "tool_result", "tool_use_id": uses[0].id, "content": "chart shown"}]
    history: Any = [*ASK, {"role": "assistant", "content": echoed}, {"role": "user", "content": answer}]
    claude.messages.create(model="charter", max_tokens=50, messages=history, tools=tools, extra_body=SERVERS)
    sent = model.requests[-1]["messages"]
    assert [c["function"]["name"] for m in sent for c in m.get("tool_calls") or []] == [
        "time__get_current_time",
        "show_chart",
    ]
