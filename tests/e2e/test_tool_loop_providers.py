"""The tool loop with translating providers: the gateway runs hub tools for Anthropic and Gemini models, and the
thinking state those APIs require (Anthropic signatures, Gemini thought signatures) survives every round."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from hub.config import parse_config
from hub.server import build_app
from tests.e2e.conftest import MASTER_KEY
from tests.fakes.anthropic_upstream import API_KEY as ANTHROPIC_KEY, FakeAnthropic
from tests.fakes.gemini_upstream import API_KEY as GEMINI_KEY, FakeGemini
from tests.support.hub import make_db, wait_for_tools
from tests.support.servers import ROOT, serve_app

ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
TWO_TOOLS = {
    "type": "mcp",
    "server_label": "postgres_db",
    "allowed_tools": ["list_tables", "get_table_stats"],
    "require_approval": "never",
}


@pytest.fixture(scope="module")
def provider_loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, FakeAnthropic, FakeGemini]]:
    db: Path = tmp_path_factory.mktemp("providers") / "shop.db"
    make_db(db)
    anthropic, gemini = FakeAnthropic(), FakeGemini()
    with serve_app(anthropic.app) as anthropic_url, serve_app(gemini.app) as gemini_url:
        models: list[dict[str, Any]] = [
            {
                "model_name": name,
                "litellm_params": {"model": f"anthropic/{name}", "api_base": anthropic_url, "api_key": ANTHROPIC_KEY},
            }
            for name in ("claude-think", "claude-tools")
        ]
        models += [
            {
                "model_name": name,
                "litellm_params": {"model": f"gemini/{name}", "api_base": gemini_url, "api_key": GEMINI_KEY},
            }
            for name in ("gemini-3-loop",)
        ]
        config = {
            "model_list": models,
            "general_settings": {"master_key": MASTER_KEY},
            "mcp_servers": {
                "postgres_db": {
                    "transport": "stdio",
                    "command": sys.executable,
                    "cwd": str(ROOT),
                    "args": ["-m", "tools.postgres_db", "--dsn", f"sqlite:///{db}"],
                }
            },
        }
        with serve_app(build_app(parse_config(config, {}))) as url:
            wait_for_tools(url, {"postgres_db"}, MASTER_KEY)
            yield url, anthropic, gemini


@pytest.fixture
def client(provider_loop: tuple[str, FakeAnthropic, FakeGemini]) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{provider_loop[0]}/v1", api_key=MASTER_KEY, max_retries=0, timeout=30) as c:
        yield c


def tool_names(record: dict[str, Any]) -> list[str]:
    return [call["name"] for call in record["tool_calls"]]


def test_anthropic_thinking_loop_keeps_signatures_across_rounds(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="claude-think",
        messages=ASK,
        tools=[TWO_TOOLS],  # pyright: ignore[reportArgumentType]
        reasoning_effort="low",
    )
    assert completion.choices[0].message.content == "Paris is sunny at noon UTC."
    record = (completion.model_extra or {})["toolhub"]
    assert tool_names(record) == ["postgres_db__get_table_stats", "postgres_db__list_tables"]  # catalog order
    assert record["rounds"] == 3


def test_anthropic_thinking_loop_streams_the_same_answer(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="claude-think",
            messages=ASK,
            tools=[TWO_TOOLS],
            stream=True,  # pyright: ignore[reportArgumentType]
            reasoning_effort="low",
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reasoning = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices)
    assert text == "Paris is sunny at noon UTC."
    assert "Step 0" in reasoning and "Step 2" in reasoning
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3 * 7


def test_anthropic_parallel_tool_uses_run_in_one_round(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="claude-tools", messages=ASK, tools=[TWO_TOOLS])  # pyright: ignore[reportArgumentType]
    record = (completion.model_extra or {})["toolhub"]
    assert {call["round"] for call in record["tool_calls"]} == {1}
    assert len(record["tool_calls"]) == 2
    assert (completion.choices[0].message.content or "").startswith("Let me check.\n\nResults: ")  # both rounds' text


@pytest.mark.parametrize("stream", [False, True])
def test_gemini_3_loop_restores_thought_signatures_on_every_round(
    client: openai.OpenAI, provider_loop: tuple[str, FakeAnthropic, FakeGemini], stream: bool
) -> None:
    gemini = provider_loop[2]
    before = len(gemini.signatures_seen)
    if stream:
        chunks = list(
            client.chat.completions.create(
                model="gemini-3-loop",
                messages=ASK,
                tools=[TWO_TOOLS],
                stream=True,  # pyright: ignore[reportArgumentType]
                reasoning_effort="high",
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
        record = (finish[-1].model_extra or {})["toolhub"]
    else:
        completion = client.chat.completions.create(
            model="gemini-3-loop",
            messages=ASK,
            tools=[TWO_TOOLS],  # pyright: ignore[reportArgumentType]
            reasoning_effort="high",
        )
        text = completion.choices[0].message.content or ""
        record = (completion.model_extra or {})["toolhub"]
    assert text == "Order A1 ships tomorrow."
    assert tool_names(record) == ["postgres_db__get_table_stats", "postgres_db__list_tables"]
    # round 2 resends step 1's call, round 3 both steps: three signatures, all the ones the fake issued
    assert [kind for _, kind in gemini.signatures_seen[before:]] == ["issued"] * 3
