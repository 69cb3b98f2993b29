"""The tool loop end to end: the openai SDK -> gateway -> fake OpenAI model, with real MCP upstreams over stdio
(the built-in postgres_db server on a SQLite file, and a test server with a tool that never ends)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest

from hub.config import parse_config
from hub.server import build_app
from tests.e2e.conftest import MASTER_KEY
from tests.fakes.openai_upstream import API_KEY, FakeOpenAI
from tests.support.hub import make_db, wait_for_tools
from tests.support.servers import ROOT, serve_app

AGENTS = ["agent", "agent-parallel", "agent-bad", "agent-forever", "agent-slow", "agent-mixed", "agent-approve"]
ASK = [{"role": "user", "content": "What is in the database?"}]
DB_TOOLS = {"type": "mcp", "server_label": "postgres_db", "require_approval": "never"}
AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}


@pytest.fixture(scope="module")
def loop_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, FakeOpenAI]]:
    db = tmp_path_factory.mktemp("loop") / "shop.db"
    make_db(db)
    fake = FakeOpenAI()
    with serve_app(fake.app) as upstream:
        models: list[dict[str, Any]] = [
            {
                "model_name": name,
                "litellm_params": {"model": f"openai/{name}", "api_base": f"{upstream}/v1", "api_key": API_KEY},
            }
            for name in AGENTS
        ]
        models.append(
            {
                "model_name": "db-agent",
                "mcp_servers": ["postgres_db"],
                "litellm_params": {"model": "openai/agent", "api_base": f"{upstream}/v1", "api_key": API_KEY},
            }
        )
        config = {
            "model_list": models,
            "general_settings": {"master_key": MASTER_KEY, "max_tool_rounds": 3, "tool_loop_keepalive_seconds": 0.2},
            "mcp_servers": {
                "postgres_db": {
                    "transport": "stdio",
                    "command": sys.executable,
                    "args": ["-m", "tools.postgres_db", "--dsn", f"sqlite:///{db}"],
                    "cwd": str(ROOT),
                },
                "aux": {
                    "transport": "stdio",
                    "command": sys.executable,
                    "args": [str(ROOT / "tests" / "mcp" / "servers" / "tool_server.py")],
                    "call_timeout": 60,
                },
                "quick": {  # the same test server, with a short call timeout
                    "transport": "stdio",
                    "command": sys.executable,
                    "args": [str(ROOT / "tests" / "mcp" / "servers" / "tool_server.py")],
                    "call_timeout": 0.5,
                },
            },
        }
        with serve_app(build_app(parse_config(config, {}))) as url:
            wait_for_tools(url, {"postgres_db", "aux", "quick"}, MASTER_KEY)
            yield url, fake


@pytest.fixture
def client(loop_gateway: tuple[str, FakeOpenAI]) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{loop_gateway[0]}/v1", api_key=MASTER_KEY, max_retries=0, timeout=30) as c:
        yield c


def test_a_model_with_default_servers_answers_after_using_hub_tools(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="db-agent", messages=ASK)  # pyright: ignore[reportArgumentType]
    answer = completion.choices[0].message.content or ""
    assert answer.startswith("Answer: ")
    assert '"name":"orders"' in answer.replace(" ", "") and '"name":"users"' in answer.replace(" ", "")
    assert '"primary_key":true' in answer.replace(" ", "")  # describe_table of the first table, "orders"
    record = (completion.model_extra or {})["toolhub"]
    assert [c["name"] for c in record["tool_calls"]] == ["postgres_db__list_tables", "postgres_db__describe_table"]
    assert record["rounds"] == 3
    assert completion.usage is not None and completion.usage.total_tokens == 3 * 19


def test_streamed_loop_shows_text_of_every_round_and_no_hub_calls(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="agent",
        messages=ASK,
        tools=[DB_TOOLS],
        stream=True,  # pyright: ignore[reportArgumentType]
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Let me look. \n\nLet me look. \n\nAnswer: ")  # every round's text, a blank line between
    assert not any(c.choices[0].delta.tool_calls for c in chunks if c.choices)
    assert len({c.id for c in chunks}) == 1
    finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [f.choices[0].finish_reason for f in finish] == ["stop"]
    assert len((finish[0].model_extra or {})["toolhub"]["tool_calls"]) == 2
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 3 * 19


def test_parallel_calls_of_one_round_are_all_answered(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="agent-parallel", messages=ASK, tools=[DB_TOOLS])  # pyright: ignore[reportArgumentType]
    answer = completion.choices[0].message.content or ""
    assert '"table": "users"' in answer and '"table": "orders"' in answer


def test_a_failing_tool_goes_back_to_the_model_as_an_error(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="agent-bad", messages=ASK, tools=[DB_TOOLS])  # pyright: ignore[reportArgumentType]
    assert "Answer: Error: " in (completion.choices[0].message.content or "")
    assert "no_such_table" in (completion.choices[0].message.content or "")
    assert (completion.model_extra or {})["toolhub"]["tool_calls"][0]["is_error"] is True


def test_the_loop_stops_at_max_tool_rounds(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="agent-forever", messages=ASK, tools=[DB_TOOLS])  # pyright: ignore[reportArgumentType]
    assert (
        completion.choices[0].message.content
        == "Toolhub stopped the tool loop after 3 rounds without a final answer from the model."
    )
    assert (completion.model_extra or {})["toolhub"]["stopped"] == "max_tool_rounds"


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_tool_call_returns_to_the_client_and_hub_calls_of_that_turn_are_not_run(
    client: openai.OpenAI, stream: bool
) -> None:
    chart = {"type": "function", "function": {"name": "show_chart", "parameters": {"type": "object"}}}
    if stream:
        with client.chat.completions.stream(model="agent-mixed", messages=ASK, tools=[DB_TOOLS, chart]) as s:  # pyright: ignore[reportArgumentType]
            completion = s.get_final_completion()
    else:
        completion = client.chat.completions.create(model="agent-mixed", messages=ASK, tools=[DB_TOOLS, chart])  # pyright: ignore[reportArgumentType]
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert [(c.function.name, c.function.arguments) for c in choice.message.tool_calls or []] == [  # pyright: ignore[reportAttributeAccessIssue]
        ("show_chart", '{"kind": "bar"}')
    ]
    assert (completion.model_extra or {}).get("toolhub", {"tool_calls": []})["tool_calls"] == []


def test_approval_required_is_refused_before_any_model_call(
    client: openai.OpenAI, loop_gateway: tuple[str, FakeOpenAI]
) -> None:
    entry = {"type": "mcp", "server_label": "postgres_db", "require_approval": "always"}
    before = len(loop_gateway[1].requests)
    with pytest.raises(openai.BadRequestError) as exc_info:
        client.chat.completions.create(model="agent-approve", messages=ASK, tools=[entry])  # pyright: ignore[reportArgumentType]
    assert exc_info.value.code == "approval_not_supported"
    assert len(loop_gateway[1].requests) == before


def test_stream_stays_alive_while_a_tool_runs_and_disconnect_cancels_the_tool(
    loop_gateway: tuple[str, FakeOpenAI],
) -> None:
    url = loop_gateway[0]
    body = {
        "model": "agent-slow",
        "messages": ASK,
        "stream": True,
        "tools": [{"type": "mcp", "server_label": "aux", "require_approval": "never"}],
    }
    with httpx2.stream("POST", f"{url}/v1/chat/completions", json=body, headers=AUTH, timeout=30) as response:
        assert response.status_code == 200
        seen: list[str] = []
        for line in response.iter_lines():
            seen.append(line)
            if line == ": keep-alive" and ": toolhub running aux__slow" in seen:
                break  # the slow tool runs, and the stream stays alive meanwhile: disconnect now
    assert any(line.startswith("data: ") and "Let me look." in line for line in seen)
    answer = httpx2.post(
        f"{url}/mcp/tools/call", headers=AUTH, json={"name": "aux__was_cancelled", "arguments": {}}, timeout=30
    )
    assert answer.json()["content"][0]["text"] == "True"


def test_a_non_streaming_client_that_gives_up_cancels_the_running_tool(loop_gateway: tuple[str, FakeOpenAI]) -> None:
    url = loop_gateway[0]
    body = {"model": "agent-slow", "messages": ASK,
            "tools": [{"type": "mcp", "server_label": "aux", "require_approval": "never"}]}  # fmt: skip
    with pytest.raises(httpx2.ReadTimeout):
        httpx2.post(f"{url}/v1/chat/completions", json=body, headers=AUTH, timeout=2)
    answer = httpx2.post(
        f"{url}/mcp/tools/call", headers=AUTH, json={"name": "aux__was_cancelled", "arguments": {}}, timeout=30
    )
    assert answer.json()["content"][0]["text"] == "True"


@pytest.mark.parametrize("stream", [False, True])
def test_a_hanging_tool_times_out_into_an_error_the_model_reads(client: openai.OpenAI, stream: bool) -> None:
    quick = [{"type": "mcp", "server_label": "quick", "require_approval": "never"}]
    if stream:
        chunks = list(client.chat.completions.create(model="agent-slow", messages=ASK, tools=quick, stream=True))  # pyright: ignore[reportArgumentType]
        answer = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
        record = (finish[-1].model_extra or {})["toolhub"]
    else:
        completion = client.chat.completions.create(model="agent-slow", messages=ASK, tools=quick)  # pyright: ignore[reportArgumentType]
        answer = completion.choices[0].message.content or ""
        record = (completion.model_extra or {})["toolhub"]
    assert "Answer: Error: " in answer and "timed out" in answer
    assert [(c["name"], c["is_error"]) for c in record["tool_calls"]] == [("quick__slow", True)]


def test_asking_for_an_unknown_server_is_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as exc_info:
        client.chat.completions.create(model="agent", messages=ASK, tools=[{"type": "mcp", "server_label": "nope"}])  # pyright: ignore[reportArgumentType]
    assert exc_info.value.param == "tools[0].server_label"
