"""`truncation: "auto"` with hub tools, with the openai SDK over loopback: a context-window refusal after a hub tool
ran is returned, never retried (the loop would start over and run the tool again)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from hub.api.responses.endpoint import _before_hub_tools  # pyright: ignore[reportPrivateUsage]
from hub.config import parse_config
from hub.loop.run import RoundFailed
from hub.server import build_app
from providers.base import ProviderError
from tests.fakes.openai_upstream import API_KEY
from tests.fakes.responses_upstream import FakeResponses
from tests.support.hub import make_db, wait_for_tools
from tests.support.servers import ROOT, serve_app

MASTER_KEY = "sk-toolhub-truncation-tools"


@pytest.fixture(scope="module")
def fake() -> FakeResponses:
    return FakeResponses()


@pytest.fixture(scope="module")
def client(fake: FakeResponses, tmp_path_factory: pytest.TempPathFactory) -> Iterator[openai.OpenAI]:
    folder = tmp_path_factory.mktemp("truncation_tools")
    make_db(folder / "shop.db")
    with serve_app(fake.app) as upstream:
        params = {"model": "openai/window-3-tool", "api_base": f"{upstream}/v1", "api_key": API_KEY}
        server = {"transport": "stdio", "command": sys.executable, "cwd": str(ROOT),
                  "args": ["-m", "tools.postgres_db", "--dsn", f"sqlite:///{folder / 'shop.db'}"]}  # fmt: skip
        config = {"model_list": [{"model_name": "db-window", "mcp_servers": ["postgres_db"], "litellm_params": params}],
                  "general_settings": {"master_key": MASTER_KEY}, "mcp_servers": {"postgres_db": server}}  # fmt: skip
        with serve_app(build_app(parse_config(config, {}))) as url:
            wait_for_tools(url, {"postgres_db"}, MASTER_KEY)
            with openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=30) as c:
                yield c


def test_a_refusal_after_a_hub_tool_ran_is_returned_and_the_tool_never_runs_twice(
    client: openai.OpenAI, fake: FakeResponses
) -> None:
    turns = [{"role": r, "content": f"{r} {i}"} for i in range(2) for r in ("user", "assistant")]
    items: Any = [*turns, {"role": "user", "content": "last"}]
    before = len(fake.chat.requests)
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="db-window", input=items, truncation="auto")
    assert caught.value.code == "context_length_exceeded"
    sent = [r["messages"] for r in fake.chat.requests[before:]]
    taken = [m for m in sent if len(m) <= 3 and not any(x["role"] == "tool" for x in m)]  # each ran a hub tool
    assert len(taken) <= 1


def refusal(hub_tools_ran: bool | None = None) -> ProviderError:
    """A context-window refusal; from the tool loop (`RoundFailed`) unless `hub_tools_ran` is None."""
    exc = ProviderError("too long", status_code=400, provider="openai", code="context_length_exceeded")
    return exc if hub_tools_ran is None else RoundFailed(exc, hub_tools_ran=hub_tools_ran)


def test_a_refusal_the_loop_marks_as_before_any_hub_tool_is_retried_and_an_unmarked_one_only_without_tools() -> None:
    assert _before_hub_tools(refusal(hub_tools_ran=False), hub_tools=True) is True
    assert _before_hub_tools(refusal(hub_tools_ran=True), hub_tools=True) is False
    assert _before_hub_tools(refusal(), hub_tools=True) is False  # not the loop's: counted as after a hub tool
    assert _before_hub_tools(refusal(), hub_tools=False) is True
    other = ProviderError("bad", status_code=400, provider="openai", code="invalid_value")
    assert _before_hub_tools(other, hub_tools=False) is False
