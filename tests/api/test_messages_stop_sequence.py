"""/v1/messages answers Anthropic's `stop_reason: "stop_sequence"` with the matched `stop_sequence` (QA inbound #12):
the chat shape carries the matched string as the choice's `stop_reason` (vLLM's field, which the Anthropic provider
fills since 6ba1055), and the Messages translation, streamed and not, gives it back instead of `end_turn`. The
streamed tool loop, which rebuilds the finishing chunk, carries it too."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from hub.config import parse_config
from hub.server import build_app
from tests.fakes.anthropic_upstream import API_KEY, FakeAnthropic
from tests.support.hub import wait_for_tools
from tests.support.servers import ROOT, serve_app

MASTER_KEY = "sk-toolhub-messages-stop-sequence"
TOOL_SERVER = str(ROOT / "tests" / "mcp" / "servers" / "tool_server.py")


@pytest.fixture(scope="module")
def gateway() -> Iterator[tuple[FakeAnthropic, str]]:
    fake = FakeAnthropic()
    with serve_app(fake.app) as upstream:
        params = {"model": "anthropic/claude-stop-stop_sequence", "api_base": upstream, "api_key": API_KEY}
        models = [{"model_name": "stopper", "litellm_params": params},
                  {"model_name": "stopper-tools", "mcp_servers": ["aux"], "litellm_params": params}]  # fmt: skip
        server = {"transport": "stdio", "command": sys.executable, "args": [TOOL_SERVER]}
        config = {"model_list": models, "general_settings": {"master_key": MASTER_KEY}, "mcp_servers": {"aux": server}}
        with serve_app(build_app(parse_config(config, {}))) as url:
            wait_for_tools(url, {"aux"}, MASTER_KEY)
            yield fake, url


def _stream(url: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The events' data of a streamed /v1/messages request."""
    with httpx2.stream("POST", f"{url}/v1/messages", json={**body, "stream": True}, headers={"x-api-key": MASTER_KEY},
                       timeout=20) as response:  # fmt: skip
        return [json.loads(line.removeprefix("data: ")) for line in response.iter_lines() if line.startswith("data: ")]


def test_anthropic_clients_get_stop_sequence_and_the_matched_string_on_v1_messages(
    gateway: tuple[FakeAnthropic, str],
) -> None:
    url = gateway[1]
    body = {"model": "stopper", "max_tokens": 10, "stop_sequences": ["END"],
            "messages": [{"role": "user", "content": "count"}]}  # fmt: skip
    headers = {"x-api-key": MASTER_KEY}
    answer = httpx2.post(f"{url}/v1/messages", json=body, headers=headers, timeout=20).json()
    assert (answer["stop_reason"], answer["stop_sequence"]) == ("stop_sequence", "END")
    deltas = [d["delta"] for d in _stream(url, body) if d["type"] == "message_delta"]
    assert deltas == [{"stop_reason": "stop_sequence", "stop_sequence": "END"}]
    plain = httpx2.post(f"{url}/v1/messages", json={**body, "stop_sequences": []}, headers=headers, timeout=20).json()
    assert (plain["stop_reason"], plain["stop_sequence"]) == ("end_turn", None)


def test_a_streamed_tool_loop_ends_with_stop_sequence_and_the_matched_string(
    gateway: tuple[FakeAnthropic, str],
) -> None:
    fake, url = gateway
    body = {"model": "stopper-tools", "max_tokens": 10, "stop_sequences": ["END"],
            "messages": [{"role": "user", "content": "count"}]}  # fmt: skip
    deltas = [d["delta"] for d in _stream(url, body) if d["type"] == "message_delta"]
    assert deltas == [{"stop_reason": "stop_sequence", "stop_sequence": "END"}]
    assert any(tool["name"].startswith("aux__") for tool in fake.requests[-1].get("tools") or [])  # the loop ran
