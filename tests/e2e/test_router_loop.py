"""Each tool-loop round goes through the router: a loop survives its model's deployment failing mid-loop."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from hub.app import create_app
from hub.config import parse_config
from hub.mcp.http import mcp_extension, mcp_routes
from tests.e2e import router_support as support
from tests.e2e.conftest import MASTER_KEY
from tests.e2e.router_support import Upstreams
from tests.fakes.faults import OPENAI_500
from tests.support.hub import make_db, wait_for_tools
from tests.support.servers import ROOT, serve_app

upstream_servers, up = support.upstream_servers, support.up
ASK = [{"role": "user", "content": "What is in the database?"}]


@contextlib.contextmanager
def loop_gateway(db: Path, models: list[dict[str, Any]], **router: Any) -> Iterator[openai.OpenAI]:
    config = {
        "model_list": models,
        "router_settings": router,
        "general_settings": {"master_key": MASTER_KEY, "max_tool_rounds": 3},
        "mcp_servers": {"postgres_db": {"transport": "stdio", "command": sys.executable, "cwd": str(ROOT),
                                        "args": ["-m", "tools.postgres_db", "--dsn", f"sqlite:///{db}"]}},
    }  # fmt: skip
    app = create_app(parse_config(config, {}), extensions=[mcp_extension()], routes=mcp_routes())
    with serve_app(app) as url:
        wait_for_tools(url, {"postgres_db"}, MASTER_KEY)
        with openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=30) as client:
            yield client


def test_a_tool_loop_falls_back_when_its_deployment_fails_mid_loop(up: Upstreams, tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    make_db(db)
    up.a.faults.queue = [None]  # the first round answers; every later request to this deployment fails
    up.a.faults.always = OPENAI_500
    models = [
        {**up.a.deployment("db-agent", "agent"), "mcp_servers": ["postgres_db"]},
        {**up.c.deployment("db-agent-backup", "agent"), "mcp_servers": ["postgres_db"]},
    ]
    with loop_gateway(db, models, fallbacks=[{"db-agent": ["db-agent-backup"]}]) as client:
        response = client.chat.completions.with_raw_response.create(model="db-agent", messages=ASK)  # pyright: ignore[reportArgumentType]
    completion = response.parse()
    assert (completion.choices[0].message.content or "").startswith("Answer: ")
    record = (completion.model_extra or {})["toolhub"]
    assert [c["name"] for c in record["tool_calls"]] == ["postgres_db__list_tables", "postgres_db__describe_table"]
    assert record["rounds"] == 3
    assert (up.a.faults.calls, up.c.faults.calls) == (3, 2)  # rounds 2 and 3 each tried the primary, then fell back
    assert response.headers["x-litellm-attempted-fallbacks"] == "2"
    assert response.headers["x-litellm-model-group"] == "db-agent-backup"


@pytest.mark.parametrize("stream", [False, True])
def test_a_failing_primary_fails_a_loop_without_fallbacks_with_the_upstream_error(
    up: Upstreams, tmp_path: Path, stream: bool
) -> None:
    db = tmp_path / "shop.db"
    make_db(db)
    up.a.faults.queue = [None]
    up.a.faults.always = OPENAI_500
    models = [{**up.a.deployment("db-agent", "agent"), "mcp_servers": ["postgres_db"]}]
    with loop_gateway(db, models) as client:
        if stream:
            chunks = client.chat.completions.create(model="db-agent", messages=ASK, stream=True)  # pyright: ignore[reportArgumentType]
            with pytest.raises(openai.APIError) as exc_info:
                list(chunks)
        else:
            with pytest.raises(openai.APIStatusError) as exc_info:
                client.chat.completions.create(model="db-agent", messages=ASK)  # pyright: ignore[reportArgumentType]
    assert "The server had an error while processing your request" in exc_info.value.message


def test_a_streamed_tool_loop_falls_back_when_its_deployment_fails_mid_loop(up: Upstreams, tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    make_db(db)
    up.a.faults.queue = [None]
    up.a.faults.always = OPENAI_500
    models = [
        {**up.a.deployment("db-agent", "agent"), "mcp_servers": ["postgres_db"]},
        {**up.c.deployment("db-agent-backup", "agent"), "mcp_servers": ["postgres_db"]},
    ]
    with loop_gateway(db, models, fallbacks=[{"db-agent": ["db-agent-backup"]}]) as client:
        chunks = list(client.chat.completions.create(model="db-agent", messages=ASK, stream=True))  # pyright: ignore[reportArgumentType]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Answer: " in text
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert (up.a.faults.calls, up.c.faults.calls) == (3, 2)
