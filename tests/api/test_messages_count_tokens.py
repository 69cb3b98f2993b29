"""/v1/messages/count_tokens with the anthropic SDK: the upstream's exact count for Anthropic aliases, an estimate for
the others, hub tools counted as the model would see them."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import anthropic
import httpx2
import pytest

from hub.api.messages.count_tokens import _anthropic_tool  # pyright: ignore[reportPrivateUsage]
from hub.config import parse_config
from hub.server import build_app
from providers.anthropic.names import wire_name
from tests.fakes.anthropic_count import FakeAnthropicCounting, counted
from tests.fakes.anthropic_upstream import API_KEY as ANTHROPIC_KEY
from tests.fakes.openai_upstream import API_KEY as OPENAI_KEY, FakeOpenAI
from tests.support.hub import make_db, wait_for_tools
from tests.support.servers import ROOT, serve_app

MASTER_KEY = "sk-toolhub-count-tokens"
HELLO: Any = [{"role": "user", "content": "hello there, how many tokens is this?"}]
WEATHER: Any = {"name": "get_weather", "description": "Weather in a city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}  # fmt: skip


@pytest.fixture(scope="module")
def fake() -> FakeAnthropicCounting:
    return FakeAnthropicCounting()


@pytest.fixture(scope="module")
def url(fake: FakeAnthropicCounting, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("count_tokens")
    make_db(folder / "shop.db")
    with serve_app(fake.app) as claude, serve_app(FakeOpenAI().app) as gpt:
        params = {"api_base": claude, "api_key": ANTHROPIC_KEY}
        models = [{"model_name": "claude", "litellm_params": {"model": "anthropic/claude-sonnet-4-5", **params}},
                  {"model_name": "claude-db", "mcp_servers": ["postgres_db"],
                   "litellm_params": {"model": "anthropic/claude-sonnet-4-5", **params}},
                  {"model_name": "claude-down", "litellm_params": {"model": "anthropic/error-529", **params}},
                  {"model_name": "gpt", "litellm_params": {"model": "openai/text", "api_base": f"{gpt}/v1",
                                                           "api_key": OPENAI_KEY}}]  # fmt: skip
        server = {"transport": "stdio", "command": sys.executable, "cwd": str(ROOT),
                  "args": ["-m", "tools.postgres_db", "--dsn", f"sqlite:///{folder / 'shop.db'}"]}  # fmt: skip
        config = {"model_list": models, "general_settings": {"master_key": MASTER_KEY},
                  "mcp_servers": {"postgres_db": server}}  # fmt: skip
        with serve_app(build_app(parse_config(config, {}))) as gateway:
            wait_for_tools(gateway, {"postgres_db"}, MASTER_KEY)
            yield gateway


@pytest.fixture
def client(url: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=url, api_key=MASTER_KEY, max_retries=0, timeout=20) as c:
        yield c


def test_an_anthropic_alias_gets_the_upstreams_exact_count(
    client: anthropic.Anthropic, fake: FakeAnthropicCounting
) -> None:
    raw = client.messages.with_raw_response.count_tokens(model="claude", messages=HELLO, system="Be brief.",
                                                         tools=[WEATHER])  # fmt: skip
    sent = fake.counts[-1]
    assert sent == {"model": "claude-sonnet-4-5", "messages": HELLO, "system": "Be brief.", "tools": [WEATHER]}
    assert raw.parse().input_tokens == counted(sent) and raw.headers["x-toolhub-token-count"] == "exact"


def test_the_alias_hub_tools_are_counted_as_the_model_sees_them(
    client: anthropic.Anthropic, fake: FakeAnthropicCounting
) -> None:
    count = client.messages.count_tokens(model="claude-db", messages=HELLO)
    names = [t["name"] for t in fake.counts[-1]["tools"]]
    assert "postgres_db__list_tables" in names and "postgres_db__describe_table" in names
    assert count.input_tokens == counted(fake.counts[-1])


def test_other_providers_get_an_estimate_of_four_characters_a_token(client: anthropic.Anthropic) -> None:
    raw = client.messages.with_raw_response.count_tokens(model="gpt", messages=[{"role": "user", "content": "x" * 400}])
    assert 100 <= raw.parse().input_tokens <= 120 and raw.headers["x-toolhub-token-count"] == "estimate"


def test_errors_come_back_in_anthropics_shape(client: anthropic.Anthropic, url: str) -> None:
    with pytest.raises(anthropic.NotFoundError):
        client.messages.count_tokens(model="no-such-model", messages=HELLO)
    with pytest.raises(anthropic.BadRequestError):
        client.messages.count_tokens(model="claude", messages=[])
    with pytest.raises(anthropic.InternalServerError) as caught:
        client.messages.count_tokens(model="claude-down", messages=HELLO)
    assert caught.value.status_code == 529
    refused = httpx2.post(f"{url}/v1/messages/count_tokens", json={"model": "claude", "messages": HELLO},
                          headers={"x-api-key": "sk-wrong"})  # fmt: skip
    assert refused.status_code == 401 and refused.json()["error"]["type"] == "authentication_error"


def test_a_hub_tool_name_anthropic_refuses_is_counted_under_the_name_the_provider_sends() -> None:
    tool = SimpleNamespace(name="docs.v2/search files", description=None, input_schema={})
    counted_as = _anthropic_tool(tool)
    assert counted_as["name"] == wire_name("docs.v2/search files") != "docs.v2/search files"
    assert counted_as["input_schema"] == {"type": "object", "properties": {}}
