"""Tool-loop requests and the response cache: stored only for an alias with `cache_tool_loops: true`."""

from __future__ import annotations

import sys
import uuid
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

AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}


@pytest.fixture(scope="module")
def loop_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, FakeOpenAI]]:
    db = tmp_path_factory.mktemp("cache-loop") / "shop.db"
    make_db(db)
    fake = FakeOpenAI()
    with serve_app(fake.app) as upstream:
        params = {"model": "openai/agent", "api_base": f"{upstream}/v1", "api_key": API_KEY}
        config: dict[str, Any] = {
            "model_list": [
                {"model_name": "db-agent", "mcp_servers": ["postgres_db"], "litellm_params": params},
                {"model_name": "db-agent-cached", "mcp_servers": ["postgres_db"], "cache_tool_loops": True,
                 "litellm_params": params},
            ],
            "general_settings": {"master_key": MASTER_KEY, "max_tool_rounds": 3},
            "litellm_settings": {"cache": True},
            "mcp_servers": {"postgres_db": {"transport": "stdio", "command": sys.executable, "cwd": str(ROOT),
                                            "args": ["-m", "tools.postgres_db", "--dsn", f"sqlite:///{db}"]}},
        }  # fmt: skip
        with serve_app(build_app(parse_config(config, {}))) as url:
            wait_for_tools(url, {"postgres_db"}, MASTER_KEY)
            yield url, fake


def ask(url: str, model: str, messages: list[dict[str, str]]) -> httpx2.Response:
    body = {"model": model, "messages": messages}
    response = httpx2.post(f"{url}/v1/chat/completions", headers=AUTH, json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response


def rounds(fake: FakeOpenAI, messages: list[dict[str, str]]) -> int:
    return sum(1 for body in fake.requests if body["messages"][0] == messages[0])


@pytest.mark.parametrize(("model", "cached"), [("db-agent", False), ("db-agent-cached", True)])
def test_a_tool_loop_answer_is_cached_only_when_the_alias_opts_in(
    loop_gateway: tuple[str, FakeOpenAI], model: str, cached: bool
) -> None:
    url, fake = loop_gateway
    messages = [{"role": "user", "content": f"What is in the database? {uuid.uuid4().hex[:6]}"}]
    first = ask(url, model, messages)
    per_request = rounds(fake, messages)
    assert per_request >= 2  # the model called a hub tool, then answered
    second = ask(url, model, messages)
    assert second.json()["choices"] == first.json()["choices"]
    assert second.headers.get("x-toolhub-cache-hit") == ("true" if cached else None)
    assert rounds(fake, messages) == (per_request if cached else 2 * per_request)


def test_a_streamed_tool_loop_is_stored_when_it_completes_and_served_in_both_modes(
    loop_gateway: tuple[str, FakeOpenAI],
) -> None:
    url, fake = loop_gateway
    messages: Any = [{"role": "user", "content": f"What is in the database? {uuid.uuid4().hex[:6]}"}]
    with openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=30) as client:
        miss = client.chat.completions.with_raw_response.create(model="db-agent-cached", messages=messages, stream=True)
        assert miss.headers["x-toolhub-cache-hit"] == "false"
        chunks = list(miss.parse())
        per_request = rounds(fake, messages)
        assert per_request >= 2  # the model called a hub tool, then answered
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        record = next(c.model_extra or {} for c in chunks if c.choices and c.choices[0].finish_reason)["toolhub"]
        plain = client.chat.completions.with_raw_response.create(model="db-agent-cached", messages=messages)
        assert plain.headers["x-toolhub-cache-hit"] == "true"
        answer = plain.parse()
        assert (answer.choices[0].message.content, (answer.model_extra or {})["toolhub"]) == (text, record)
        assert record["rounds"] == per_request and record["tool_calls"]
        with client.chat.completions.stream(model="db-agent-cached", messages=messages) as stream:
            replayed = stream.get_final_completion()
        assert replayed.choices[0].message.content == text and replayed.choices[0].finish_reason == "stop"
    assert rounds(fake, messages) == per_request


def test_a_streamed_tool_loop_of_an_alias_not_opted_in_is_not_stored(loop_gateway: tuple[str, FakeOpenAI]) -> None:
    url, fake = loop_gateway
    messages: Any = [{"role": "user", "content": f"What is in the database? {uuid.uuid4().hex[:6]}"}]
    with openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=30) as client:
        list(client.chat.completions.create(model="db-agent", messages=messages, stream=True))
        per_request = rounds(fake, messages)
        second = client.chat.completions.with_raw_response.create(model="db-agent", messages=messages)
    assert "x-toolhub-cache-hit" not in second.headers
    assert rounds(fake, messages) == 2 * per_request
