"""/v1/messages with hub tools: alias defaults and Anthropic's MCP connector shape run through the tool loop, with
the built-in postgres_db server over stdio on a SQLite file and the fake OpenAI agent as the model."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from hub.config import parse_config
from hub.server import build_app
from tests.fakes.openai_upstream import API_KEY, FakeOpenAI
from tests.support.hub import make_db, wait_for_tools
from tests.support.servers import ROOT, serve_app

MASTER_KEY = "sk-toolhub-messages-tools"
ASK: list[Any] = [{"role": "user", "content": "What is in the database?"}]
CONNECTOR = [{"type": "url", "name": "postgres_db", "url": "https://example.invalid/mcp"}]


@pytest.fixture(scope="module")
def fake() -> FakeOpenAI:
    return FakeOpenAI()


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory, fake: FakeOpenAI) -> Iterator[str]:
    db = tmp_path_factory.mktemp("messages-tools") / "shop.db"
    make_db(db)
    with serve_app(fake.app) as upstream:
        params = {"model": "openai/agent", "api_base": f"{upstream}/v1", "api_key": API_KEY}
        config = {
            "model_list": [{"model_name": "agent", "litellm_params": params},
                           {"model_name": "db-agent", "mcp_servers": ["postgres_db"], "litellm_params": params}],
            "general_settings": {"master_key": MASTER_KEY, "max_tool_rounds": 3, "tool_loop_keepalive_seconds": 0.2},
            "mcp_servers": {"postgres_db": {"transport": "stdio", "command": sys.executable, "cwd": str(ROOT),
                                            "args": ["-m", "tools.postgres_db", "--dsn", f"sqlite:///{db}"]}},
        }  # fmt: skip
        with serve_app(build_app(parse_config(config, {}))) as gateway:
            wait_for_tools(gateway, {"postgres_db"}, MASTER_KEY)
            yield gateway


@pytest.fixture
def client(url: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=url, api_key=MASTER_KEY, max_retries=0, timeout=30) as c:
        yield c


def test_an_alias_with_default_servers_answers_after_hub_tools_shown_as_mcp_blocks(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model="db-agent", max_tokens=100, messages=ASK)
    kinds = [block.type for block in message.content]
    assert kinds == ["mcp_tool_use", "mcp_tool_result", "mcp_tool_use", "mcp_tool_result", "text"]
    uses = [b for b in message.content if b.type == "mcp_tool_use"]
    assert [(u.name, u.server_name) for u in uses] == [("postgres_db__list_tables", "postgres_db"),
                                                      ("postgres_db__describe_table", "postgres_db")]  # fmt: skip
    results = [b for b in message.content if b.type == "mcp_tool_result"]
    assert [r.is_error for r in results] == [False, False]
    first: Any = results[0].content
    assert '"orders"' in first[0]["text"] and '"users"' in first[0]["text"]  # list_tables as the model got it
    last = message.content[-1]
    assert last.type == "text" and last.text.startswith("Answer: ") and message.stop_reason == "end_turn"


def test_the_mcp_connector_shape_names_a_hub_server_and_a_streamed_loop_ends_with_the_answer(url: str) -> None:
    with anthropic.Anthropic(base_url=url, api_key=MASTER_KEY, max_retries=0, timeout=30) as client:
        with client.messages.stream(model="agent", max_tokens=100, messages=ASK,
                                    extra_body={"mcp_servers": CONNECTOR}) as stream:  # fmt: skip
            message = stream.get_final_message()
    text = "".join(b.text for b in message.content if b.type == "text")
    assert text.startswith("Let me look. ") and "Answer: " in text
    assert message.stop_reason == "end_turn"


def test_a_streamed_loop_shows_hub_calls_as_mcp_blocks_between_the_rounds_texts(client: anthropic.Anthropic) -> None:
    with client.beta.messages.stream(model="db-agent", max_tokens=100, messages=ASK,
                                     betas=["mcp-client-2025-04-04"]) as stream:  # fmt: skip
        kinds = [e.content_block.type for e in stream if e.type == "content_block_start"]
        message = stream.get_final_message()
    assert kinds == ["text", "mcp_tool_use", "mcp_tool_result", "text", "mcp_tool_use", "mcp_tool_result", "text"]
    assert [b.type for b in message.content] == kinds
    uses = [b for b in message.content if b.type == "mcp_tool_use"]
    assert [(u.name, u.server_name, u.input) for u in uses] == [
        ("postgres_db__list_tables", "postgres_db", {}),
        ("postgres_db__describe_table", "postgres_db", {"table": "orders"}),
    ]
    results = [b for b in message.content if b.type == "mcp_tool_result"]
    first: Any = results[0].content
    assert '"orders"' in first[0].text and results[0].tool_use_id == uses[0].id and not results[0].is_error
    texts = [b.text for b in message.content if b.type == "text"]
    assert texts[0] == "Let me look. " and texts[-1].startswith("\n\nAnswer: ") and message.stop_reason == "end_turn"
    assert "Calling" not in "".join(texts)  # the loop's trace lines are not shown as text or thinking
    assert not [b for b in message.content if b.type == "thinking"]


def test_a_second_turn_sending_the_mcp_blocks_back_gives_the_upstream_each_hub_call_with_its_result(
    client: anthropic.Anthropic, fake: FakeOpenAI
) -> None:
    first = client.messages.create(model="db-agent", max_tokens=100, messages=ASK)
    echoed: Any = [block.model_dump(exclude_none=True) for block in first.content]
    turn2: Any = [*ASK, {"role": "assistant", "content": echoed}, {"role": "user", "content": "thanks"}]
    client.messages.create(model="agent", max_tokens=100, messages=turn2)
    sent = fake.requests[-1]["messages"]
    uses = [b for b in first.content if b.type == "mcp_tool_use"]
    roles = [(m["role"], [c["id"] for c in m.get("tool_calls") or []], m.get("tool_call_id")) for m in sent]
    assert roles == [("user", [], None), ("assistant", [uses[0].id], None), ("tool", [], uses[0].id),
                     ("assistant", [uses[1].id], None), ("tool", [], uses[1].id),
                     ("assistant", [], None), ("user", [], None)]  # fmt: skip
    last: Any = first.content[-1]
    assert '"orders"' in sent[2]["content"] and sent[5]["content"] == last.text
