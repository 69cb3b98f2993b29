"""The tool loop reports dropped parameters like a plain completion: the openai SDK -> gateway -> fake OpenAI agent
that calls a real MCP tool server (postgres_db over stdio, on SQLite)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import openai
import pytest

from hub.config import parse_config
from hub.server import build_app
from tests.fakes.openai_upstream import API_KEY, FakeOpenAI
from tests.support.hub import make_db, wait_for_tools
from tests.support.servers import ROOT, serve_app

MASTER_KEY = "sk-toolhub-loop-drops"
ASK = [{"role": "user", "content": "What is in the database?"}]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[openai.OpenAI]:
    db = tmp_path_factory.mktemp("drops") / "shop.db"
    make_db(db)
    with serve_app(FakeOpenAI().app) as upstream:
        agent = {"model": "openai/agent", "api_base": f"{upstream}/v1", "api_key": API_KEY}
        config = {
            "model_list": [{"model_name": "db-agent", "mcp_servers": ["db"], "litellm_params": agent}],
            "general_settings": {"master_key": MASTER_KEY, "max_tool_rounds": 3},
            "mcp_servers": {"db": {"transport": "stdio", "command": sys.executable, "cwd": str(ROOT),
                                   "args": ["-m", "tools.postgres_db", "--dsn", f"sqlite:///{db}"]}},
        }  # fmt: skip
        with serve_app(build_app(parse_config(config, {}))) as url:
            wait_for_tools(url, {"db"}, MASTER_KEY)
            with openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=30) as c:
                yield c


def test_a_non_streamed_tool_loop_names_what_its_rounds_dropped(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="db-agent",
        messages=ASK,
        extra_body={"num_ctx": 4096, "mirostat": 1},  # pyright: ignore[reportArgumentType]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content and "orders" in completion.choices[0].message.content
    assert raw.headers["x-toolhub-dropped-params"] == "num_ctx,mirostat"
