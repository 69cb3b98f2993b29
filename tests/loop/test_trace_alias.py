"""`model_info.tool_loop_trace`: an alias's default trace mode, which a request's own field overrides; a bad value
fails the config load with its path. Needs the lead's hooks in hub/config and hub/gateway/chat.py."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from hub.config import ConfigError, parse_config
from hub.server import build_app
from tests.fakes.openai_upstream import API_KEY, FakeOpenAI
from tests.support.hub import make_db, wait_for_tools
from tests.support.servers import ROOT, serve_app

MASTER_KEY = "sk-toolhub-trace-alias-master"
ASK: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What is in the database?"}]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[openai.OpenAI]:
    db = tmp_path_factory.mktemp("trace-alias") / "shop.db"
    make_db(db)
    with serve_app(FakeOpenAI().app) as upstream:
        params = {"model": "openai/agent", "api_base": f"{upstream}/v1", "api_key": API_KEY}
        config = {
            "model_list": [{"model_name": "traced", "mcp_servers": ["postgres_db"], "litellm_params": params,
                            "model_info": {"tool_loop_trace": "reasoning"}}],
            "general_settings": {"master_key": MASTER_KEY},
            "mcp_servers": {"postgres_db": {"transport": "stdio", "command": sys.executable, "cwd": str(ROOT),
                                            "args": ["-m", "tools.postgres_db", "--dsn", f"sqlite:///{db}"]}},
        }  # fmt: skip
        with serve_app(build_app(parse_config(config, {}))) as url:
            wait_for_tools(url, {"postgres_db"}, MASTER_KEY)
            with openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=30) as c:
                yield c


def test_the_alias_default_traces_and_a_request_can_turn_it_off(client: openai.OpenAI) -> None:
    traced = client.chat.completions.create(model="traced", messages=ASK).choices[0].message
    reasoning = (traced.model_extra or {})["reasoning_content"]
    assert reasoning.startswith("- Calling `postgres_db__list_tables` with {}\n- `postgres_db__list_tables` answered")
    quiet = client.chat.completions.create(model="traced", messages=ASK, extra_body={"tool_loop_trace": "none"})
    assert "reasoning_content" not in (quiet.choices[0].message.model_extra or {})


def test_a_bad_alias_default_fails_the_config_with_its_path() -> None:
    entry = {"model_name": "m", "litellm_params": {"model": "openai/x", "api_key": "k"},
             "model_info": {"tool_loop_trace": "loud"}}  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        parse_config({"model_list": [entry]}, {})
    assert caught.value.path == "model_list[0].model_info.tool_loop_trace"
