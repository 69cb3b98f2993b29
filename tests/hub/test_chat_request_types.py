"""Chat request fields of the wrong type or past what JSON reading keeps: one 400 in OpenAI's shape for every
provider, before any upstream is called (QA chat findings 4 and 5)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from hub.config import parse_config
from hub.server import build_app
from tests.fakes import anthropic_upstream, gemini_upstream, openai_upstream
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import FakeOpenAI
from tests.support.servers import serve_app

MASTER_KEY = "sk-toolhub-request-types"
ALIASES = ["oai", "claude", "gem"]
HI: dict[str, Any] = {"role": "user", "content": "hi"}


class Hub:
    def __init__(self, url: str, upstreams: dict[str, FakeOpenAI | FakeAnthropic | FakeGemini]) -> None:
        self.url = url
        self.upstreams = upstreams

    def post(self, body: dict[str, Any]) -> httpx2.Response:
        """`body` sent as JSON written by `json`, which keeps integers of any size."""
        headers = {"authorization": f"Bearer {MASTER_KEY}", "content-type": "application/json"}
        return httpx2.post(f"{self.url}/v1/chat/completions", content=json.dumps(body), headers=headers, timeout=20)

    def upstream_calls(self) -> int:
        return sum(len(fake.requests) for fake in self.upstreams.values())


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    database = Path(tmp_path_factory.mktemp("request-types")) / "hub.db"
    fakes = {"oai": FakeOpenAI(), "claude": FakeAnthropic(), "gem": FakeGemini()}
    with serve_app(fakes["oai"].app) as o, serve_app(fakes["claude"].app) as a, serve_app(fakes["gem"].app) as g:
        models = [
            {"model_name": "oai", "litellm_params": {"model": "openai/text", "api_base": f"{o}/v1",
                                                     "api_key": openai_upstream.API_KEY}},
            {"model_name": "claude", "litellm_params": {"model": "anthropic/claude-sonnet-4-5", "api_base": a,
                                                        "api_key": anthropic_upstream.API_KEY}},
            {"model_name": "gem", "litellm_params": {"model": "gemini/gemini-2.5-text", "api_base": g,
                                                     "api_key": gemini_upstream.API_KEY}},
        ]  # fmt: skip
        general = {"master_key": MASTER_KEY, "database_url": f"sqlite:///{database}"}
        with serve_app(build_app(parse_config({"model_list": models, "general_settings": general}, {}))) as url:
            yield Hub(url, fakes)  # pyright: ignore[reportArgumentType]


def refused(hub: Hub, body: dict[str, Any]) -> dict[str, Any]:
    """The error of a request the gateway must refuse without calling an upstream."""
    before = hub.upstream_calls()
    answer = hub.post(body)
    assert answer.status_code == 400, answer.text
    assert hub.upstream_calls() == before
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error"
    return error


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("alias", ALIASES)
@pytest.mark.parametrize(("text", "got"), [(5, "an integer"), (None, "null"), ({"a": 1}, "an object"),
                                           (["x"], "an array"), (True, "a boolean")])  # fmt: skip
def test_a_text_part_whose_text_is_no_string_is_refused_naming_it(
    hub: Hub, alias: str, stream: bool, text: object, got: str
) -> None:
    content = [{"type": "text", "text": text}]
    error = refused(hub, {"model": alias, "messages": [{"role": "user", "content": content}], "stream": stream})
    assert error == {
        "message": f"Invalid type for 'messages[0].content[0].text': expected a string, but got {got} instead.",
        "type": "invalid_request_error",
        "param": "messages.[0].content.[0].text",
        "code": "invalid_type",
    }


@pytest.mark.parametrize("alias", ALIASES)
@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([{"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": 5}]}],
         "messages.[0].content.[1].text"),
        ([{"role": "system", "content": [{"type": "text", "text": 5}]}, HI], "messages.[0].content.[0].text"),
        ([HI, {"role": "assistant", "content": [{"type": "text", "text": 1.5}]}, HI], "messages.[1].content.[0].text"),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                                       {"type": "text", "text": "a"}, {"type": "text", "text": 5}]}],
         "messages.[0].content.[2].text"),
    ],
)  # fmt: skip
def test_a_bad_text_part_beside_good_ones_is_refused_not_dropped(
    hub: Hub, alias: str, messages: list[Any], param: str
) -> None:
    assert refused(hub, {"model": alias, "messages": messages})["param"] == param


@pytest.mark.parametrize("alias", ALIASES)
def test_a_text_part_without_text_is_a_missing_parameter(hub: Hub, alias: str) -> None:
    error = refused(hub, {"model": alias, "messages": [{"role": "user", "content": [{"type": "text"}]}]})
    assert (error["param"], error["code"]) == ("messages.[0].content.[0].text", "missing_required_parameter")


@pytest.mark.parametrize("alias", ALIASES)
@pytest.mark.parametrize("name", ["max_tokens", "max_completion_tokens", "n", "seed", "top_logprobs"])
@pytest.mark.parametrize("value", [10**20, 2**64])
def test_an_integer_past_64_bits_is_too_large_never_a_float(hub: Hub, alias: str, name: str, value: int) -> None:
    error = refused(hub, {"model": alias, "messages": [HI], name: value})
    assert error == {
        "message": f"Invalid '{name}': the integer is too large (the gateway reads integers up to {2**64 - 1}).",
        "type": "invalid_request_error",
        "param": name,
        "code": "integer_above_max_value",
    }


@pytest.mark.parametrize("alias", ALIASES)
def test_a_negative_integer_past_64_bits_is_too_small(hub: Hub, alias: str) -> None:
    error = refused(hub, {"model": alias, "messages": [HI], "seed": -(2**63) - 1})
    assert (error["param"], error["code"]) == ("seed", "integer_below_min_value")
    assert "too small" in error["message"]


@pytest.mark.parametrize("alias", ALIASES)
def test_a_thinking_budget_past_64_bits_is_too_large(hub: Hub, alias: str) -> None:
    error = refused(hub, {"model": alias, "messages": [HI], "thinking": {"type": "enabled", "budget_tokens": 10**20}})
    assert (error["param"], error["code"]) == ("thinking.budget_tokens", "integer_above_max_value")


def test_the_largest_integer_read_is_forwarded_as_an_integer(hub: Hub) -> None:
    fake = hub.upstreams["oai"]
    answer = hub.post({"model": "oai", "messages": [HI], "seed": 2**64 - 1})
    assert answer.status_code == 200, answer.text
    assert fake.requests[-1]["seed"] == 2**64 - 1
    assert type(fake.requests[-1]["seed"]) is int
