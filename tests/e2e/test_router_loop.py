"""Each tool-loop round goes through the router: a loop survives its model's deployment failing mid-loop."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from tests.e2e import router_support as support
from tests.e2e.router_support import ASK, Upstreams, loop_gateway
from tests.fakes.faults import OPENAI_500
from tests.support.hub import make_db

upstream_servers, up = support.upstream_servers, support.up


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
