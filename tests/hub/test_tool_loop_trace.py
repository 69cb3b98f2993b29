"""`tool_loop_trace` in memory: hub tool calls and their results shown as reasoning or as text, streamed and not."""

from __future__ import annotations

import re
from typing import Any

import pytest

from hub.accounts.auth import MASTER
from hub.errors import BadRequest
from hub.loop.run import LoopSettings, complete_with_tools
from hub.loop.stream import stream_with_tools
from hub.loop.trace import short
from tests.fakes.scripted import ScriptedProvider
from tests.hub.test_tool_loop import ASK, MCP_ALL, SCRIPT, chat, db_hub, failing, plan_for

pytestmark = pytest.mark.anyio

TRACE = (
    "- Calling `db__list_tables` with {}\n"
    '- `db__list_tables` answered in N ms: ["users", "orders"]\n\n'
    '- Calling `db__describe_table` with {"table": "users"}\n'
    "- `db__describe_table` answered in N ms: users: id integer, name text\n\n"
)


def _ms(text: str) -> str:
    return re.sub(r"in \d+ ms", "in N ms", text)


def _body(trace: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "m", "messages": ASK, "tools": [MCP_ALL]}
    if trace is not None:
        body["tool_loop_trace"] = trace
    return body


async def _complete(body: dict[str, Any], default: str = "none") -> tuple[dict[str, Any], ScriptedProvider]:
    hub, model = db_hub(), ScriptedProvider(list(SCRIPT))
    settings = LoopSettings(trace=default)  # pyright: ignore[reportArgumentType]
    completion = await complete_with_tools(model, chat(body), plan_for(body, hub), hub, MASTER, settings)
    return completion["choices"][0]["message"], model


async def _stream(body: dict[str, Any], default: str = "none") -> list[dict[str, Any]]:
    hub, model = db_hub(), ScriptedProvider(list(SCRIPT))
    settings = LoopSettings(trace=default)  # pyright: ignore[reportArgumentType]
    items = stream_with_tools(model, chat(body), plan_for(body, hub), hub, MASTER, settings)
    return [item async for item in items if not isinstance(item, bytes)]


def _joined(chunks: list[dict[str, Any]], field: str) -> str:
    return "".join(c["choices"][0]["delta"].get(field) or "" for c in chunks if c["choices"])


async def test_reasoning_mode_puts_each_call_and_result_in_the_answers_reasoning() -> None:
    message, model = await _complete(_body("reasoning"))
    assert _ms(message["reasoning_content"]) == TRACE
    assert message["content"] == "There are users and orders."
    assert all("tool_loop_trace" not in request for request in model.requests)  # never sent upstream


async def test_streamed_reasoning_mode_streams_calls_before_they_run_and_results_after() -> None:
    chunks = await _stream(_body("reasoning"))
    assert _ms(_joined(chunks, "reasoning_content")) == TRACE
    events = [(e["type"], e["name"]) for c in chunks for e in c.get("toolhub_trace", [])]
    assert events == [("tool_call", "db__list_tables"), ("tool_result", "db__list_tables"),
                      ("tool_call", "db__describe_table"), ("tool_result", "db__describe_table")]  # fmt: skip
    result = next(e for c in chunks for e in c.get("toolhub_trace", []) if e["type"] == "tool_result")
    assert result["summary"] == '["users", "orders"]' and result["is_error"] is False and result["round"] == 1
    assert {c["id"] for c in chunks} == {"chatcmpl-1"}  # trace chunks belong to the one answer
    assert sum("role" in c["choices"][0]["delta"] for c in chunks if c["choices"]) == 1
    assert "reasoning_content" not in _joined(chunks, "content")


BLOCKS = [
    '- Calling `db__list_tables` with {}\n- `db__list_tables` answered in N ms: ["users", "orders"]',
    '- Calling `db__describe_table` with {"table": "users"}\n'
    "- `db__describe_table` answered in N ms: users: id integer, name text",
]


async def test_content_mode_puts_each_rounds_calls_in_a_paragraph_of_the_text_streamed_and_not() -> None:
    message, _ = await _complete(_body("content"))
    assert "reasoning_content" not in message
    assert _ms(message["content"]).split("\n\n") == [*BLOCKS, "There are users and orders."]
    streamed = _ms(_joined(await _stream(_body("content")), "content"))  # the scripted stream says "Round n." too
    assert streamed.split("\n\n") == ["Round 1. ", BLOCKS[0], "Round 2. ", BLOCKS[1], "There are users and orders."]


async def test_the_alias_default_applies_and_the_request_field_overrides_it() -> None:
    message, _ = await _complete(_body(), default="reasoning")
    assert _ms(message["reasoning_content"]) == TRACE
    message, _ = await _complete(_body("none"), default="reasoning")
    assert "reasoning_content" not in message
    chunks = await _stream(_body())
    assert _joined(chunks, "reasoning_content") == "" and not any("toolhub_trace" in c for c in chunks)


async def test_a_failed_call_is_traced_as_failed() -> None:
    hub, model = db_hub(db__broken=failing), ScriptedProvider([[("db__broken", {})], "Sorry."])
    body = _body("reasoning")
    completion = await complete_with_tools(model, chat(body), plan_for(body, hub), hub, MASTER, LoopSettings())
    assert _ms(completion["choices"][0]["message"]["reasoning_content"]) == (
        "- Calling `db__broken` with {}\n- `db__broken` failed in N ms: relation does not exist\n\n"
    )


@pytest.mark.parametrize("value", ["verbose", 1, True, ["reasoning"]])
async def test_an_unknown_mode_is_a_400_naming_the_field(value: Any) -> None:
    with pytest.raises(BadRequest) as caught:
        await _complete({**_body(), "tool_loop_trace": value})
    assert caught.value.param == "tool_loop_trace" and caught.value.status_code == 400
    with pytest.raises(BadRequest):
        await _stream({**_body(), "tool_loop_trace": value})


def test_summaries_are_one_short_line() -> None:
    assert short("a\n  b\tc", 10) == "a b c"
    assert short("x" * 300, 200) == "x" * 199 + "…"
