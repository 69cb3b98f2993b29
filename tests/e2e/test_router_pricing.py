"""A request answered by a fallback or another deployment is priced at the prices of the deployment that answered."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from hub.config import parse_config
from hub.server import build_app
from tests.e2e import router_support as support
from tests.e2e.conftest import MASTER_KEY
from tests.e2e.router_support import Upstreams
from tests.fakes.faults import OPENAI_500
from tests.support.servers import serve_app

upstream_servers, up = support.upstream_servers, support.up

PRIMARY = {"input_cost_per_token": 1.0, "output_cost_per_token": 1.0}
BACKUP = {"input_cost_per_token": 0.001, "output_cost_per_token": 0.002}


@pytest.mark.parametrize("stream", [False, True])
def test_a_fallback_answer_is_priced_at_the_fallbacks_prices(up: Upstreams, tmp_path: Path, stream: bool) -> None:
    up.a.faults.always = OPENAI_500
    raw = {
        "model_list": [up.a.deployment("g", **PRIMARY), up.b.deployment("h", **BACKUP)],
        "router_settings": {"fallbacks": [{"g": ["h"]}]},
        "general_settings": {"master_key": MASTER_KEY, "database_url": f"sqlite:///{tmp_path / 'hub.db'}"},
    }
    with (
        serve_app(build_app(parse_config(raw, {}))) as url,
        openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0) as client,
    ):
        response = client.chat.completions.with_raw_response.create(
            model="g", messages=[{"role": "user", "content": "hello"}], stream=False
        )
        usage = response.parse().usage
        assert usage is not None and response.headers["x-litellm-attempted-fallbacks"] == "1"
        expected = usage.prompt_tokens * 0.001 + usage.completion_tokens * 0.002
        if not stream:
            assert float(response.headers["x-toolhub-cost"]) == pytest.approx(expected)
        else:
            chunks = list(
                client.chat.completions.create(
                    model="g", messages=[{"role": "user", "content": "hello"}], stream=True,
                    stream_options={"include_usage": True},
                )
            )  # fmt: skip
            assert chunks[-1].usage is not None
        logs = _logs(url, 1 + stream)
    assert [row["spend"] for row in logs] == [pytest.approx(expected)] * (1 + stream)

    def routed(row: dict[str, Any]) -> tuple[Any, ...]:
        return (row["model"], row["answered_by_group"], row["api_base"], row["attempted_fallbacks"])

    assert [routed(row) for row in logs] == [("g", "h", f"{up.b.url}/v1", 1)] * (1 + stream)


def _logs(url: str, count: int) -> list[dict[str, Any]]:
    """/spend/logs once `count` requests are there (usage is written in the background)."""
    deadline = time.monotonic() + 10
    while True:
        answer = httpx2.get(f"{url}/spend/logs", headers={"Authorization": f"Bearer {MASTER_KEY}"}).json()
        if answer["total"] >= count or time.monotonic() > deadline:
            return answer["data"]
        time.sleep(0.05)
