"""Anthropic's `stop_reason: "stop_sequence"` keeps the matched sequence across the chat shape (QA inbound #12): the
choice carries it as `stop_reason`, the string vLLM's chat completions give beside `finish_reason: "stop"`, so that
/v1/messages can answer `stop_reason: "stop_sequence"` with its `stop_sequence` instead of `end_turn`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from hub.config import parse_config
from hub.server import build_app
from providers.anthropic.names import ToolNames
from providers.anthropic.response import to_completion
from providers.anthropic.stream import StreamTranslator
from tests.fakes.anthropic_upstream import API_KEY, FakeAnthropic
from tests.support.servers import serve_app

MASTER_KEY = "sk-toolhub-stop-sequence"
MESSAGE: dict[str, Any] = {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
    "content": [{"type": "text", "text": "one two "}], "stop_reason": "stop_sequence", "stop_sequence": "END",
    "usage": {"input_tokens": 3, "output_tokens": 2},
}  # fmt: skip
HEADERS = {"Authorization": f"Bearer {MASTER_KEY}"}
BODY = {"model": "stopper", "messages": [{"role": "user", "content": "count"}], "stop": ["END", "STOP"]}


@pytest.fixture(scope="module")
def gateway() -> Iterator[tuple[FakeAnthropic, str]]:
    fake = FakeAnthropic()
    with serve_app(fake.app) as upstream:
        entry = {"model_name": "stopper", "litellm_params": {"model": "anthropic/claude-stop-stop_sequence",
                                                             "api_base": upstream, "api_key": API_KEY}}  # fmt: skip
        config = parse_config({"model_list": [entry], "general_settings": {"master_key": MASTER_KEY}}, {})
        with serve_app(build_app(config)) as url:
            yield fake, url


def test_a_matched_stop_sequence_is_the_choices_stop_reason_beside_finish_reason_stop() -> None:
    completion = to_completion(MESSAGE, ToolNames(), created=1)
    choice = ChatCompletion.model_validate(completion).choices[0]
    assert (choice.finish_reason, completion["choices"][0]["stop_reason"]) == ("stop", "END")


@pytest.mark.parametrize(("stop", "sequence"), [("end_turn", None), ("stop_sequence", None), ("max_tokens", None),
                                                ("end_turn", "END")])  # fmt: skip
def test_other_stops_give_the_choice_no_stop_reason(stop: str, sequence: str | None) -> None:
    completion = to_completion({**MESSAGE, "stop_reason": stop, "stop_sequence": sequence}, ToolNames(), created=1)
    assert "stop_reason" not in completion["choices"][0]


def test_a_streams_finishing_chunk_names_the_matched_stop_sequence() -> None:
    translator = StreamTranslator(ToolNames(), model="m", created=1)
    events = [{"type": "message_start", "message": {**MESSAGE, "content": [], "stop_reason": None}},
              {"type": "message_delta", "delta": {"stop_reason": "stop_sequence", "stop_sequence": "END"},
               "usage": {"output_tokens": 2}}]  # fmt: skip
    chunks = [chunk for event in events for chunk in translator.feed(event["type"], event)]
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop",
                                        "stop_reason": "END"}  # fmt: skip


def test_chat_clients_get_the_matched_sequence_streamed_and_not(gateway: tuple[FakeAnthropic, str]) -> None:
    fake, url = gateway
    answer = httpx2.post(f"{url}/v1/chat/completions", json=BODY, headers=HEADERS, timeout=20)
    assert answer.status_code == 200, answer.text
    assert fake.requests[-1]["stop_sequences"] == ["END", "STOP"]
    choice = answer.json()["choices"][0]
    assert (choice["finish_reason"], choice["stop_reason"]) == ("stop", "END")
    with httpx2.stream("POST", f"{url}/v1/chat/completions", json={**BODY, "stream": True}, headers=HEADERS,
                       timeout=20) as response:  # fmt: skip
        lines = [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: {")]
    finishing = [c for c in map(json.loads, lines) for c in c["choices"] if c.get("finish_reason")]
    assert [(c["finish_reason"], c.get("stop_reason")) for c in finishing] == [("stop", "END")]
