"""What the response cache may share, end to end through the openai SDK (the review's experiments as tests):

* a tool loop's answer only with the key that ran it, with the same tools: a key limited to `list_tables` never gets
  the master key's loop that also ran `describe_table`;
* never an answer a fallback model gave (`fallbacks` + `mock_testing_fallbacks`), streamed or not;
* never a loop stopped at `max_tool_rounds` or one whose tool call failed;
* across two gateways on one Redis, a hit for a loop that ended in a client tool call brings its hub rounds along,
  so the client's next turn goes on with them.
"""

from __future__ import annotations

import os
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
from tests.e2e.test_tool_loop_rounds import CHART, TIME, TIME_SERVER
from tests.fakes.loop_upstream import LoopModel
from tests.fakes.openai_upstream import API_KEY, FakeOpenAI
from tests.support.hub import make_db, wait_for_tools
from tests.support.servers import ROOT, serve_app

REDIS_URL = os.environ.get("TOOLHUB_TEST_REDIS_URL")
MASTER = {"Authorization": f"Bearer {MASTER_KEY}"}
TOOLS: Any = [TIME, CHART]
AGENTS = {"db-agent": "agent", "db-approve": "agent-approve", "db-forever": "agent-forever", "db-bad": "agent-bad"}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, FakeOpenAI]]:
    tmp = tmp_path_factory.mktemp("cache-scope")
    make_db(tmp / "shop.db")
    dsn = f"sqlite:///{tmp / 'shop.db'}"
    fake = FakeOpenAI()
    with serve_app(fake.app) as upstream:

        def params(model: str) -> dict[str, Any]:
            return {"model": f"openai/{model}", "api_base": f"{upstream}/v1", "api_key": API_KEY}

        loops = [{"model_name": alias, "mcp_servers": ["postgres_db"], "cache_tool_loops": True,
                  "litellm_params": params(model)} for alias, model in AGENTS.items()]  # fmt: skip
        plain = [{"model_name": "big", "litellm_params": params("text")},
                 {"model_name": "small", "litellm_params": params("json")}]  # fmt: skip
        config: dict[str, Any] = {
            "model_list": loops + plain,
            "general_settings": {"master_key": MASTER_KEY, "database_url": f"sqlite:///{tmp / 'hub.db'}",
                                 "max_tool_rounds": 3},
            "litellm_settings": {"cache": True},
            "mcp_servers": {"postgres_db": {"transport": "stdio", "command": sys.executable, "cwd": str(ROOT),
                                            "args": ["-m", "tools.postgres_db", "--dsn", dsn]}},
        }  # fmt: skip
        with serve_app(build_app(parse_config(config, {}))) as url:
            wait_for_tools(url, {"postgres_db"}, MASTER_KEY)
            yield url, fake


def sdk(url: str, key: str = MASTER_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=30)


def scoped_key(url: str, model: str, tools: list[str]) -> str:
    permission = {"mcp_servers": ["postgres_db"], "mcp_tool_permissions": {"postgres_db": tools}}
    body = {"key_alias": f"scoped-{uuid.uuid4().hex[:6]}", "models": [model], "object_permission": permission}
    response = httpx2.post(f"{url}/key/generate", headers=MASTER, json=body)
    assert response.status_code == 200, response.text
    return response.json()["key"]


def unique(text: str) -> list[Any]:
    return [{"role": "user", "content": f"{text} {uuid.uuid4().hex[:8]}"}]


def loop_calls(completion: Any) -> list[str]:
    return [call["name"] for call in (completion.model_extra or {})["toolhub"]["tool_calls"]]


def offered(body: dict[str, Any]) -> list[str]:
    return [tool["function"]["name"] for tool in body.get("tools") or []]


def test_a_key_limited_to_some_tools_never_gets_a_loop_that_ran_others(gateway: tuple[str, FakeOpenAI]) -> None:
    url, fake = gateway
    messages = unique("What is in the database?")
    key = scoped_key(url, "db-agent", ["list_tables"])
    with sdk(url) as master, sdk(url, key) as scoped:
        first = master.chat.completions.with_raw_response.create(model="db-agent", messages=messages)
        assert loop_calls(first.parse()) == ["postgres_db__list_tables", "postgres_db__describe_table"]
        seen = len(fake.requests)
        # Its own loop: the scripted model then asks for describe_table, which this key is not offered (the fake
        # fails on that), where the master key's entry would have handed it describe_table's output.
        with pytest.raises(openai.InternalServerError):
            scoped.chat.completions.create(model="db-agent", messages=messages)
    assert len(fake.requests) > seen
    assert offered(fake.requests[-1]) == ["postgres_db__list_tables"]


def test_a_key_gets_its_own_entry_for_its_own_tools(gateway: tuple[str, FakeOpenAI]) -> None:
    url, fake = gateway
    messages = unique("Describe the users table.")
    key = scoped_key(url, "db-approve", ["describe_table"])
    with sdk(url) as master, sdk(url, key) as scoped:
        warmed = master.chat.completions.with_raw_response.create(model="db-approve", messages=messages)
        seen = len(fake.requests)
        own = scoped.chat.completions.with_raw_response.create(model="db-approve", messages=messages)
        again = scoped.chat.completions.with_raw_response.create(model="db-approve", messages=messages)
    assert [r.headers["x-toolhub-cache-hit"] for r in (warmed, own, again)] == ["false", "false", "true"]
    assert {offered(body)[0] for body in fake.requests[seen:]} == {"postgres_db__describe_table"}
    assert again.parse().choices == own.parse().choices


@pytest.mark.parametrize("stream", [False, True])
def test_an_answer_a_fallback_gave_is_not_served_for_the_primary_model(
    gateway: tuple[str, FakeOpenAI], stream: bool
) -> None:
    url, _ = gateway
    messages = unique("capital of France?")
    json_mode: Any = {"type": "json_object"}
    forced = {"fallbacks": ["small"], "mock_testing_fallbacks": True}
    with sdk(url) as client:
        if stream:
            chunks = client.chat.completions.create(
                model="big", messages=messages, response_format=json_mode, extra_body=forced, stream=True
            )
            fallen = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        else:
            answer = client.chat.completions.create(
                model="big", messages=messages, response_format=json_mode, extra_body=forced
            )
            fallen = answer.choices[0].message.content
        assert fallen == '{"ok": true}'  # the fallback's answer
        own = client.chat.completions.with_raw_response.create(
            model="big", messages=messages, response_format=json_mode
        )
        again = client.chat.completions.with_raw_response.create(
            model="big", messages=messages, response_format=json_mode
        )
    assert own.headers["x-toolhub-cache-hit"] == "false"
    assert own.parse().choices[0].message.content == f"You said: {messages[0]['content']}"
    assert again.headers["x-toolhub-cache-hit"] == "true"
    assert again.parse().choices == own.parse().choices


@pytest.mark.parametrize(("model", "stream"), [("db-forever", False), ("db-forever", True), ("db-bad", False)])
def test_a_loop_stopped_at_its_round_limit_or_with_a_failed_tool_call_is_not_stored(
    gateway: tuple[str, FakeOpenAI], model: str, stream: bool
) -> None:
    url, fake = gateway
    messages = unique("Keep looking.")

    def ran() -> int:
        return sum(1 for body in fake.requests if body["messages"][0] == messages[0])

    with sdk(url) as client:
        if stream:
            for _ in client.chat.completions.create(model=model, messages=messages, stream=True):
                pass
        else:
            first = client.chat.completions.create(model=model, messages=messages)
            loop = (first.model_extra or {})["toolhub"]
            assert loop.get("stopped") == "max_tool_rounds" or any(c["is_error"] for c in loop["tool_calls"])
        per_request = ran()
        second = client.chat.completions.with_raw_response.create(model=model, messages=messages)
    assert second.headers["x-toolhub-cache-hit"] == "false"
    assert ran() == 2 * per_request


@pytest.fixture(scope="module")
def two_on_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, LoopModel]]:
    if REDIS_URL is None:
        pytest.skip("needs TOOLHUB_TEST_REDIS_URL")
    model = LoopModel()
    with serve_app(model.app) as upstream:
        params = {"model": "openai/charter", "api_base": f"{upstream}/v1", "api_key": "sk-x"}
        cache = {"type": "redis", "redis_url": REDIS_URL, "namespace": f"test-{uuid.uuid4().hex[:8]}"}
        config = parse_config({
            "model_list": [{"model_name": "charter", "cache_tool_loops": True, "litellm_params": params}],
            "general_settings": {"master_key": MASTER_KEY},
            "litellm_settings": {"cache": True, "cache_params": cache},
            "mcp_servers": {"time": TIME_SERVER},
        }, {})  # fmt: skip
        with serve_app(build_app(config)) as first, serve_app(build_app(config)) as second:
            wait_for_tools(first, {"time"}, MASTER_KEY)
            wait_for_tools(second, {"time"}, MASTER_KEY)
            yield first, second, model


def test_a_hit_on_another_gateway_brings_the_hub_rounds_before_the_client_call(
    two_on_redis: tuple[str, str, LoopModel],
) -> None:
    first, second, model = two_on_redis
    ask = unique("What time is it?")
    with sdk(first) as one, sdk(second) as other:
        miss = one.chat.completions.with_raw_response.create(model="charter", messages=ask, tools=TOOLS)
        hit = other.chat.completions.with_raw_response.create(model="charter", messages=ask, tools=TOOLS)
        assert [r.headers["x-toolhub-cache-hit"] for r in (miss, hit)] == ["false", "true"]
        message = hit.parse().choices[0].message.model_dump()
        assert [call["function"]["name"] for call in message["tool_calls"]] == ["show_chart"]
        assistant = {"role": "assistant", "content": message["content"], "tool_calls": message["tool_calls"]}
        result = {"role": "tool", "tool_call_id": message["tool_calls"][0]["id"], "content": "chart shown"}
        history: Any = [*ask, assistant, result]
        done = other.chat.completions.create(model="charter", messages=history, tools=TOOLS)
    assert done.choices[0].message.content == "Done."  # the model saw the time tool's result as well
    sent = model.requests[-1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "assistant", "tool"]
    assert sent[1]["tool_calls"][0]["function"]["name"] == "time__get_current_time"
