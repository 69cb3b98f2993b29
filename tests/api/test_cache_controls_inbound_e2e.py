"""The response cache's per-request `cache` controls on /v1/messages and /v1/responses, as on chat: the official
`anthropic` and `openai` SDKs send them with `extra_body`, over loopback, to a gateway with `cache: true` in front
of a fake OpenAI upstream that counts its calls (and refuses any field it does not know, `cache` included).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from hub.config import parse_config
from hub.server import build_app
from tests.fakes.openai_upstream import API_KEY, FakeOpenAI
from tests.support.servers import serve_app

MASTER_KEY = "sk-toolhub-cache-controls"
APIS = ["messages", "responses"]
MALFORMED = [
    ({"ttl": -1}, "'cache.ttl' must be"),
    ({"ttl": "x"}, "'cache.ttl' must be"),
    ({"bogus": 1}, "unknown cache control 'cache.bogus'"),
    ({"no-cache": "yes"}, "'cache.no-cache' must be"),
]
"""A malformed control, and how the error names it (hub/cache/controls.py words the rest)."""


@pytest.fixture(scope="module")
def gateway() -> Iterator[tuple[str, FakeOpenAI]]:
    fake = FakeOpenAI()
    with serve_app(fake.app) as upstream:
        params = {"model": "openai/text", "api_base": f"{upstream}/v1", "api_key": API_KEY}
        config: dict[str, Any] = {
            "model_list": [{"model_name": "text", "litellm_params": params}],
            "general_settings": {"master_key": MASTER_KEY},
            "litellm_settings": {"cache": True},
        }
        with serve_app(build_app(parse_config(config, {}))) as url:
            yield url, fake


class Asker:
    """One unique question asked again and again through one inbound API; `calls()`: how often it went upstream."""

    def __init__(self, gateway: tuple[str, FakeOpenAI], api: str) -> None:
        self.url, self.fake, self.api = gateway[0], gateway[1], api
        self.text = f"say {uuid.uuid4().hex[:8]}"

    def ask(self, cache: Any = None, *, stream: bool = False) -> dict[str, str]:
        """The answer's headers, once the answer (streamed or not) was read whole."""
        extra = {} if cache is None else {"cache": cache}
        if self.api == "messages":
            with anthropic.Anthropic(base_url=self.url, api_key=MASTER_KEY, max_retries=0, timeout=20) as claude:
                create = claude.messages.with_streaming_response.create
                with create(model="text", max_tokens=20, messages=[{"role": "user", "content": self.text}],
                            stream=stream, extra_body=extra) as response:  # fmt: skip
                    response.read()
                    return dict(response.headers)
        with openai.OpenAI(base_url=f"{self.url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=20) as client:
            with client.responses.with_streaming_response.create(model="text", input=self.text, stream=stream,
                                                                 extra_body=extra) as response:  # fmt: skip
                response.read()
                return dict(response.headers)

    def hit(self, cache: Any = None, *, stream: bool = False) -> bool:
        return self.ask(cache, stream=stream)["x-toolhub-cache-hit"] == "true"

    def calls(self) -> int:
        return sum(1 for body in self.fake.requests if body["messages"][-1]["content"] == self.text)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("api", APIS)
def test_no_cache_skips_the_lookup_but_stores_the_answer(
    gateway: tuple[str, FakeOpenAI], api: str, stream: bool
) -> None:
    asker = Asker(gateway, api)
    assert not asker.hit(stream=stream)
    assert not asker.hit({"no-cache": True}, stream=stream)
    assert asker.calls() == 2
    assert asker.hit(stream=stream)
    assert asker.calls() == 2


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("api", APIS)
def test_no_store_leaves_the_answer_out_of_the_cache(gateway: tuple[str, FakeOpenAI], api: str, stream: bool) -> None:
    asker = Asker(gateway, api)
    assert not asker.hit({"no-store": True}, stream=stream)
    assert not asker.hit(stream=stream)
    assert asker.calls() == 2


@pytest.mark.parametrize("api", APIS)
def test_a_namespace_keeps_its_own_entries(gateway: tuple[str, FakeOpenAI], api: str) -> None:
    asker = Asker(gateway, api)
    first = asker.ask({"namespace": "team-a"})
    assert first["x-litellm-cache-key"].startswith("team-a:") and first["x-toolhub-cache-hit"] == "false"
    assert not asker.hit()  # the default namespace has no entry for it yet
    assert asker.hit({"namespace": "team-a"})
    assert asker.calls() == 2


@pytest.mark.parametrize("api", APIS)
def test_s_maxage_refuses_an_entry_older_than_it(gateway: tuple[str, FakeOpenAI], api: str) -> None:
    asker = Asker(gateway, api)
    assert not asker.hit()
    assert not asker.hit({"s-maxage": 0})
    assert asker.hit({"s-maxage": 600})
    assert asker.calls() == 2


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("cache", "words"), MALFORMED)
def test_a_malformed_control_is_anthropics_400_on_messages(
    gateway: tuple[str, FakeOpenAI], cache: Any, words: str, stream: bool
) -> None:
    asker = Asker(gateway, "messages")
    with pytest.raises(anthropic.BadRequestError) as caught:
        asker.ask(cache, stream=stream)
    body: Any = caught.value.body
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error", body
    assert words in body["error"]["message"], body
    assert asker.calls() == 0


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("cache", "words"), MALFORMED)
def test_a_malformed_control_is_openais_400_naming_cache_on_responses(
    gateway: tuple[str, FakeOpenAI], cache: Any, words: str, stream: bool
) -> None:
    asker = Asker(gateway, "responses")
    with pytest.raises(openai.BadRequestError) as caught:
        asker.ask(cache, stream=stream)
    assert (caught.value.param, caught.value.code) == ("cache", "invalid_cache_control")
    assert words in caught.value.message, caught.value.message
    assert asker.calls() == 0
