"""The Messages translation in memory: requests to Chat Completions bodies, chat chunks to Anthropic events."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hub.api.messages.request import to_chat
from hub.api.messages.response import to_message, tool_use_id
from hub.api.messages.stream import EventTranslator
from hub.errors import BadRequest


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    chunk = {"id": "chatcmpl-1", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def _parse(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for frame in filter(None, data.decode().split("\n\n")):
        kind, payload = frame.split("\n")
        out.append((kind.removeprefix("event: "), json.loads(payload.removeprefix("data: "))))
    return out


def test_frames_split_across_reads_keep_alives_and_tool_fragments_become_anthropic_events() -> None:
    translator = EventTranslator("alias")
    call = {"index": 0, "id": "call.1", "type": "function", "function": {"name": "f", "arguments": ""}}
    stream = (
        _chunk({"role": "assistant", "content": "Hi"})
        + b": keep-alive\n\n"
        + _chunk({"tool_calls": [call]})
        + _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]})
        + _chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}, "tool_calls")
        + b'data: {"id":"chatcmpl-1","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":4}}\n\n'
        + b"data: [DONE]\n\n"
    )
    out = b"".join(translator.feed(stream[i : i + 7]) for i in range(0, len(stream), 7)) + translator.end()
    events = _parse(out)
    assert [kind for kind, _ in events] == [
        "message_start", "content_block_start", "content_block_delta", "ping", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop", "message_delta",
        "message_stop",
    ]  # fmt: skip
    assert events[0][1]["message"]["model"] == "alias" and events[0][1]["message"]["id"] == "msg_1"
    block = {"type": "tool_use", "id": "call_1", "name": "f", "input": {}}
    assert events[5][1] == {"type": "content_block_start", "index": 1, "content_block": block}
    assert events[-2][1]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert events[-2][1]["usage"] == {"input_tokens": 9, "output_tokens": 4, "cache_read_input_tokens": 0,
                                      "cache_creation_input_tokens": 0}  # fmt: skip


def test_a_completion_with_reasoning_and_broken_tool_arguments_keeps_both() -> None:
    completion = {"id": "chatcmpl-x", "choices": [{"finish_reason": "length", "message": {
        "content": "partial", "reasoning_content": "hmm",
        "tool_calls": [{"id": "gm/time#2", "function": {"name": "t", "arguments": "{bad"}}]}}]}  # fmt: skip
    message = to_message(completion, "m")
    assert message["content"] == [
        {"type": "thinking", "thinking": "hmm", "signature": ""},
        {"type": "text", "text": "partial"},
        {"type": "tool_use", "id": "gm_time_2", "name": "t", "input": {"_raw_arguments": "{bad"}},
    ]
    assert message["stop_reason"] == "max_tokens"
    assert tool_use_id("") == "toolu_gateway"


def test_thinking_and_cache_control_go_only_to_anthropic_aliases_and_a_document_becomes_a_file_part() -> None:
    signed = {"type": "thinking", "thinking": "t", "signature": "sig"}
    body = {"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": [{"type": "document", "title": "a.pdf",
                                      "source": {"type": "base64", "media_type": "application/pdf", "data": "QQ=="}},
                                     {"type": "text", "text": "sum up", "cache_control": {"type": "ephemeral"}}]},
        {"role": "assistant", "content": [signed, {"type": "text", "text": "ok"}]}]}  # fmt: skip
    body["tools"] = [{"name": "f", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}]
    kept = to_chat(body)
    assert kept["messages"][1] == {"role": "assistant", "content": "ok", "thinking_blocks": [signed]}
    assert kept["messages"][0]["content"][1]["cache_control"] == kept["tools"][0]["cache_control"]
    chat = to_chat(body, anthropic=False)
    assert chat["tools"] == [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    assert chat["messages"] == [
        {"role": "user", "content": [
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,QQ==", "filename": "a.pdf"}},
            {"type": "text", "text": "sum up"}]},
        {"role": "assistant", "content": "ok"},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "image"}]}]},
         "messages.0.content.0.source"),
        ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "tool_result"}]}]},
         "messages.0.content.0.tool_use_id"),
        ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "tool_choice": "auto"},
         "tool_choice"),
        ({"model": "m", "max_tokens": True, "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
        ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "stream"),
    ],
)  # fmt: skip
def test_malformed_requests_are_refused_naming_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequest) as caught:
        to_chat(body)
    assert caught.value.param == param


def test_a_system_message_inside_the_conversation_stays_a_system_message_where_it_was() -> None:
    # Claude Code sends its reminders so: {"role": "system", "content": "..."} between user and assistant turns
    body = {"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": "hi"}, {"role": "system", "content": "Agents: a, b"},
        {"role": "system", "content": [{"type": "text", "text": "more"}]}]}  # fmt: skip
    assert to_chat(body)["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "system", "content": "Agents: a, b"},
        {"role": "system", "content": [{"type": "text", "text": "more"}]},
    ]


def test_a_keep_alive_before_the_first_chunk_starts_the_message_then_pings() -> None:
    translator = EventTranslator("alias")
    events = _parse(translator.feed(b": keep-alive\n\n" + _chunk({"content": "ok"}, "stop")) + translator.end())
    assert [kind for kind, _ in events] == [
        "message_start", "ping", "content_block_start", "content_block_delta", "content_block_stop", "message_delta",
        "message_stop",
    ]  # fmt: skip
    assert events[0][1]["message"]["id"].startswith("msg_") and len(events[0][1]["message"]["id"]) > 8
