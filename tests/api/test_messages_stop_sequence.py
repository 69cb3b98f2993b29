"""/v1/messages answers Anthropic's `stop_reason: "stop_sequence"` with the matched `stop_sequence` (QA inbound #12):
the chat shape carries the matched string as the choice's `stop_reason` (vLLM's field, which the Anthropic provider
fills since 6ba1055), and the Messages translation, streamed and not, gives it back instead of `end_turn`."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx2
import pytest

from hub.config import parse_config
from hub.server import build_app
from tests.fakes.anthropic_upstream import API_KEY, FakeAnthropic
from tests.support.servers import serve_app

MASTER_KEY = "sk-toolhub-messages-stop-sequence"


@pytest.fixture(scope="module")
def gateway() -> Iterator[tuple[FakeAnthropic, str]]:
    fake = FakeAnthropic()
    with serve_app(fake.app) as upstream:
        entry = {"model_name": "stopper", "litellm_params": {"model": "anthropic/claude-stop-stop_sequence",
                                                             "api_base": upstream, "api_key": API_KEY}}  # fmt: skip
        config = parse_config({"model_list": [entry], "general_settings": {"master_key": MASTER_KEY}}, {})
        with serve_app(build_app(config)) as url:
            yield fake, url


def test_anthropic_clients_get_stop_sequence_and_the_matched_string_on_v1_messages(
    gateway: tuple[FakeAnthropic, str],
) -> None:
    url = gateway[1]
    body = {"model": "stopper", "max_tokens": 10, "stop_sequences": ["END"],
            "messages": [{"role": "user", "content": "count"}]}  # fmt: skip
    headers = {"x-api-key": MASTER_KEY}
    answer = httpx2.post(f"{url}/v1/messages", json=body, headers=headers, timeout=20).json()
    assert (answer["stop_reason"], answer["stop_sequence"]) == ("stop_sequence", "END")
    with httpx2.stream("POST", f"{url}/v1/messages", json={**body, "stream": True}, headers=headers,
                       timeout=20) as response:  # fmt: skip
        data = [json.loads(line.removeprefix("data: ")) for line in response.iter_lines() if line.startswith("data: ")]
    deltas = [d["delta"] for d in data if d["type"] == "message_delta"]
    assert deltas == [{"stop_reason": "stop_sequence", "stop_sequence": "END"}]
    plain = httpx2.post(f"{url}/v1/messages", json={**body, "stop_sequences": []}, headers=headers, timeout=20).json()
    assert (plain["stop_reason"], plain["stop_sequence"]) == ("end_turn", None)
