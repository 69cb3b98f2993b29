"""Prompt caching with Anthropic over real sockets: injected breakpoints are accepted, cached tokens are reported."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from hub.config import parse_config
from hub.server import build_app
from tests.e2e.anthropic_conftest import MASTER_KEY, _entry  # pyright: ignore[reportPrivateUsage]
from tests.fakes.anthropic_upstream import API_KEY, FakeAnthropic
from tests.support.servers import serve_app

POINTS = [{"location": "message", "role": "system"}]


@pytest.fixture(scope="module")
def fake_gateway() -> Iterator[tuple[FakeAnthropic, str]]:
    fake = FakeAnthropic()
    with serve_app(fake.app) as upstream:
        entry = _entry("claude", "claude-sonnet-4-5", upstream, cache_control_injection_points=POINTS)
        raw = {"model_list": [entry], "general_settings": {"master_key": MASTER_KEY}}
        with serve_app(build_app(parse_config(raw, {"FAKE_ANTHROPIC_KEY": API_KEY}))) as url:
            yield fake, url


def test_injected_breakpoints_reach_anthropic_and_cached_tokens_come_back(
    fake_gateway: tuple[FakeAnthropic, str],
) -> None:
    fake, url = fake_gateway
    with openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=20) as client:
        answer = client.chat.completions.create(
            model="claude",
            messages=[{"role": "system", "content": "You are terse."}, {"role": "user", "content": "hi"}],
        )
    sent = fake.requests[-1]
    assert sent["system"] == [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}]
    assert "cache_control" not in str(sent["messages"])
    assert answer.usage is not None and answer.usage.prompt_tokens_details is not None
    assert answer.usage.prompt_tokens_details.cached_tokens == 5  # the fake's cache_read_input_tokens
