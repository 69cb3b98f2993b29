"""`tool_loop_trace` end to end: the openai SDK, and Open WebUI's own request shape, against the gateway on loopback
with the fake OpenAI model and the postgres_db MCP server over stdio."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import orjson
import pytest
from openai.types.chat import ChatCompletionMessageParam

from hub.config import parse_config
from hub.server import build_app
from tests.fakes.openai_upstream import API_KEY, FakeOpenAI
from tests.support.hub import make_db, wait_for_tools
from tests.support.servers import ROOT, serve_app

MASTER_KEY = "sk-toolhub-trace-master"
ASK: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What is in the database?"}]
DB_TOOLS = {"type": "mcp", "server_label": "postgres_db", "require_approval": "never"}
CALLS = [
    "- Calling `postgres_db__list_tables` with {}",
    '- Calling `postgres_db__describe_table` with {"table": "orders"}',
]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("trace") / "shop.db"
    make_db(db)
    with serve_app(FakeOpenAI().app) as upstream:
        params = {"model": "openai/agent", "api_base": f"{upstream}/v1", "api_key": API_KEY}
        config = {
            "model_list": [{"model_name": "db-agent", "mcp_servers": ["postgres_db"], "litellm_params": params}],
            "general_settings": {"master_key": MASTER_KEY, "max_tool_rounds": 4},
            "mcp_servers": {"postgres_db": {"transport": "stdio", "command": sys.executable, "cwd": str(ROOT),
                                            "args": ["-m", "tools.postgres_db", "--dsn", f"sqlite:///{db}"]}},
        }  # fmt: skip
        with serve_app(build_app(parse_config(config, {}))) as url:
            wait_for_tools(url, {"postgres_db"}, MASTER_KEY)
            yield url


@pytest.fixture
def client(gateway: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway}/v1", api_key=MASTER_KEY, max_retries=0, timeout=30) as c:
        yield c


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line]


def test_the_sdk_gets_calls_and_results_in_the_messages_reasoning(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="db-agent",
        messages=ASK,
        extra_body={"tool_loop_trace": "reasoning"},
    )
    message = completion.choices[0].message
    reasoning = _lines((message.model_extra or {})["reasoning_content"])
    assert [line for line in reasoning if line.startswith("- Calling")] == CALLS
    assert reasoning[1].startswith("- `postgres_db__list_tables` answered in ") and '"orders"' in reasoning[1]
    assert (message.content or "").startswith("Answer: ")


def test_the_sdk_streams_each_call_before_its_result_as_reasoning(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="db-agent",
        messages=ASK,
        stream=True,
        extra_body={"tool_loop_trace": "reasoning"},
    )
    pieces: list[tuple[str, str]] = []
    for chunk in stream:
        for choice in chunk.choices:
            extra = choice.delta.model_extra or {}
            if extra.get("reasoning_content"):
                pieces.append(("reasoning", extra["reasoning_content"]))
            if choice.delta.content:
                pieces.append(("content", choice.delta.content))
    reasoning = _lines("".join(text for kind, text in pieces if kind == "reasoning"))
    assert [line.split(" answered in ")[0] for line in reasoning] == [
        CALLS[0], "- `postgres_db__list_tables`", CALLS[1], "- `postgres_db__describe_table`"]  # fmt: skip
    content = "".join(text for kind, text in pieces if kind == "content")
    assert pieces[-1][0] == "content" and content.split("\n\n")[-1].startswith("Answer: ")


def test_content_mode_shows_the_calls_as_a_paragraph_of_the_answer(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="db-agent",
        messages=ASK,
        extra_body={"tool_loop_trace": "content"},
    )
    paragraphs = (completion.choices[0].message.content or "").split("\n\n")
    assert [p.splitlines()[0] for p in paragraphs[:2]] == CALLS and paragraphs[2].startswith("Answer: ")


def test_a_bad_mode_is_an_openai_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="db-agent",
            messages=ASK,
            stream=True,
            extra_body={"tool_loop_trace": "loud"},
        )
    assert caught.value.status_code == 400 and "tool_loop_trace" in str(caught.value.body)


def test_open_webuis_request_shape_gets_a_thinking_block(gateway: str) -> None:
    """Open WebUI 0.12 sends custom parameters flattened at the top level, streams, reads `data:` lines only and
    renders `delta.reasoning_content` as a collapsible block (../shared/notes/clients.md)."""
    body: dict[str, Any] = {"model": "db-agent", "messages": ASK, "stream": True, "num_ctx": 8192, "top_k": 40,
                            "tool_loop_trace": "reasoning"}  # fmt: skip
    headers = {"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json",
               "X-OpenWebUI-Chat-Id": "c1"}  # fmt: skip
    reasoning, content = "", ""
    with httpx2.stream("POST", f"{gateway}/v1/chat/completions", json=body, headers=headers, timeout=30) as response:
        assert "text/event-stream" in response.headers["content-type"]
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = orjson.loads(line[6:])
            assert "error" not in chunk
            for choice in chunk["choices"]:
                reasoning += choice["delta"].get("reasoning_content") or ""
                content += choice["delta"].get("content") or ""
    assert [line for line in _lines(reasoning) if line.startswith("- Calling")] == CALLS
    assert content.split("\n\n")[-1].startswith("Answer: ") and "Calling" not in content
