"""/v1/messages at its edges: empty content, paths and methods it does not serve, and LiteLLM's router fields."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest

from hub.config import parse_config
from hub.server import build_app
from tests.fakes import anthropic_upstream, openai_upstream
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI
from tests.support.servers import serve_app

MASTER_KEY = "sk-toolhub-messages-edges"
HI: list[Any] = [{"role": "user", "content": "hi"}]
EMPTY = "messages.0: all messages must have non-empty content except for the optional final assistant message"


class Hub:
    def __init__(self, url: str, openai: FakeOpenAI, key: str) -> None:
        self.url = url
        self.openai = openai
        self.key = key
        """A virtual key that may use the alias `text` only."""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    database = Path(tmp_path_factory.mktemp("messages-edges")) / "hub.db"
    fake_openai, fake_anthropic = FakeOpenAI(), FakeAnthropic()
    with serve_app(fake_openai.app) as o, serve_app(fake_anthropic.app) as a:
        models = [
            {"model_name": "text", "litellm_params": {"model": "openai/text", "api_base": f"{o}/v1",
                                                      "api_key": openai_upstream.API_KEY}},
            {"model_name": "claude", "litellm_params": {"model": "anthropic/claude-sonnet-4-5", "api_base": a,
                                                        "api_key": anthropic_upstream.API_KEY}},
        ]  # fmt: skip
        general = {"master_key": MASTER_KEY, "database_url": f"sqlite:///{database}"}
        with serve_app(build_app(parse_config({"model_list": models, "general_settings": general}, {}))) as url:
            made = httpx2.post(f"{url}/key/generate", json={"models": ["text"]}, timeout=20,
                               headers={"Authorization": f"Bearer {MASTER_KEY}"})  # fmt: skip
            assert made.status_code == 200, made.text
            yield Hub(url, fake_openai, made.json()["key"])


@pytest.fixture
def client(hub: Hub) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=hub.url, api_key=MASTER_KEY, max_retries=0, timeout=20) as c:
        yield c


@pytest.mark.parametrize("alias", ["text", "claude"])
@pytest.mark.parametrize(
    ("messages", "system", "message"),
    [
        ([{"role": "user", "content": []}], None, EMPTY),
        ([{"role": "user", "content": []}], "Be brief.", EMPTY),
        ([{"role": "user", "content": ""}], None, EMPTY),
        ([*HI, {"role": "assistant", "content": []}, *HI], None, EMPTY.replace(".0:", ".1:")),
        ([{"role": "user", "content": [{"type": "text", "text": ""}]}], None,
         "messages.0.content.0: text content blocks must be non-empty"),
        ([{"role": "system", "content": "Be brief."}], None,
         "messages: at least one user or assistant message is required"),
    ],
)  # fmt: skip
def test_empty_content_is_the_same_anthropic_400_whichever_family_serves_the_alias(
    client: anthropic.Anthropic, alias: str, messages: list[Any], system: str | None, message: str
) -> None:
    extra: Any = {} if system is None else {"system": system}
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model=alias, max_tokens=5, messages=messages, **extra)
    assert caught.value.body == {"type": "error", "error": {"type": "invalid_request_error", "message": message}}


def test_an_empty_final_assistant_message_is_a_prefill_and_allowed(client: anthropic.Anthropic, hub: Hub) -> None:
    client.messages.create(model="text", max_tokens=5, messages=[*HI, {"role": "assistant", "content": []}])
    assert hub.openai.requests[-1]["messages"] == [*HI, {"role": "assistant", "content": None}]


def test_an_unknown_path_under_v1_messages_is_an_anthropic_404(client: anthropic.Anthropic) -> None:
    request: Any = {"custom_id": "a", "params": {"model": "text", "max_tokens": 5, "messages": HI}}
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.batches.create(requests=[request])
    message = "Not Found: POST /v1/messages/batches"
    assert caught.value.body == {"type": "error", "error": {"type": "not_found_error", "message": message}}


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_another_method_than_post_is_an_anthropic_405_with_allow(hub: Hub, path: str, method: str) -> None:
    response = httpx2.request(method, f"{hub.url}{path}", headers={"x-api-key": MASTER_KEY}, timeout=20)
    assert (response.status_code, response.headers["allow"]) == (405, "POST")
    error = {"type": "invalid_request_error", "message": f"Method Not Allowed: {method} {path}"}
    assert response.json() == {"type": "error", "error": error}


def test_a_trailing_slash_is_still_redirected_and_other_paths_keep_openais_shape(hub: Hub) -> None:
    moved = httpx2.post(f"{hub.url}/v1/messages/?beta=true", json={}, timeout=20)
    assert (moved.status_code, moved.headers["location"]) == (307, f"{hub.url}/v1/messages?beta=true")
    other = httpx2.post(f"{hub.url}/v1/nothing", json={}, timeout=20)
    assert (other.status_code, other.json()["error"]["code"]) == (404, "not_found")


def test_a_requests_fallbacks_are_honoured_as_on_chat(client: anthropic.Anthropic) -> None:
    extra = {"fallbacks": ["claude"], "mock_testing_fallbacks": True, "num_retries": 0, "timeout": 30}
    raw = client.messages.with_raw_response.create(model="text", max_tokens=5, messages=HI, extra_body=extra)
    assert (raw.headers["x-litellm-model-group"], raw.headers["x-litellm-attempted-fallbacks"]) == ("claude", "1")
    assert raw.parse().content[0].type == "text"


def test_a_fallback_to_another_family_gets_no_anthropic_only_fields(client: anthropic.Anthropic, hub: Hub) -> None:
    text: Any = {"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}
    extra = {"fallbacks": ["text"], "mock_testing_fallbacks": True}
    raw = client.messages.with_raw_response.create(
        model="claude", max_tokens=5, messages=[{"role": "user", "content": [text]}], extra_body=extra
    )
    assert raw.headers["x-litellm-model-group"] == "text"
    sent = hub.openai.requests[-1]["messages"]
    assert sent == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]  # no cache_control for OpenAI


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"fallbacks": ["claude"]}, "'fallbacks' names 'claude', which is not a model this key can use."),
        ({"fallbacks": "claude"}, "'fallbacks' must be a list of model names."),
        ({"num_retries": 99}, "'num_retries' must be an integer from 0 to 10."),
        ({"timeout": "soon"}, "'timeout' must be a number of seconds (0 to 3600)."),
        ({"mock_testing_fallbacks": "yes"}, "'mock_testing_fallbacks' must be true or false."),
    ],
)
def test_router_fields_are_checked_with_the_keys_models_as_on_chat(
    hub: Hub, extra: dict[str, Any], message: str
) -> None:
    with anthropic.Anthropic(base_url=hub.url, api_key=hub.key, max_retries=0, timeout=20) as limited:
        with pytest.raises(anthropic.BadRequestError) as caught:
            limited.messages.create(model="text", max_tokens=5, messages=HI, extra_body=extra)
    assert caught.value.body == {"type": "error", "error": {"type": "invalid_request_error", "message": message}}


@pytest.mark.parametrize(
    ("router", "only"),
    [({}, True), ({"fallbacks": [{"claude": ["text"]}]}, False), ({"default_fallbacks": ["text"]}, False),
     ({"context_window_fallbacks": [{"claude": ["text"]}]}, False),
     ({"content_policy_fallbacks": [{"claude": ["text"]}]}, False), ({"fallbacks": [{"text": ["claude"]}]}, True)],
)  # fmt: skip
def test_a_config_fallback_to_another_family_counts_as_one_the_request_names(
    router: dict[str, Any], only: bool
) -> None:
    from hub.api.messages.endpoint import _anthropic_only  # pyright: ignore[reportPrivateUsage]

    models = [{"model_name": "text", "litellm_params": {"model": "openai/text", "api_base": "http://127.0.0.1:9/v1"}},
              {"model_name": "claude", "litellm_params": {"model": "anthropic/claude-sonnet-4-5",
                                                          "api_base": "http://127.0.0.1:9"}}]  # fmt: skip
    config = parse_config({"model_list": models, "router_settings": router}, {})
    assert _anthropic_only(config, {"model": "claude", "messages": HI}) is only


IMAGE: Any = {"type": "image", "source": "x"}
SOURCE = "messages.0.content.0.source"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"max_tokens": "5"}, "max_tokens: Input should be a valid integer"),
        ({"max_tokens": 2.5}, "max_tokens: Input should be a valid integer"),
        ({"max_tokens": -5}, "max_tokens: Input should be greater than or equal to 1"),
        ({"model": 5}, "model: Input should be a valid string"),
        ({"messages": [{"role": "user", "content": 5}]},
         "messages.0.content: Input should be a string or an array of content blocks"),
        ({"messages": [{"role": "user", "content": [IMAGE]}]},
         f"{SOURCE}: Input should be an object (a base64, url or text source)"),
        ({"messages": [{"role": "user", "content": [{"type": "image"}]}]}, f"{SOURCE}: Field required"),
        ({"tools": [{"name": 5, "input_schema": {}}]}, "tools.0.name: Input should be a valid string"),
    ],
)  # fmt: skip
def test_a_field_of_the_wrong_type_is_refused_saying_what_is_wrong(
    client: anthropic.Anthropic, fields: dict[str, Any], message: str
) -> None:
    body: Any = {"model": "text", "max_tokens": 5, "messages": HI, **fields}
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(**body)
    assert caught.value.body == {"type": "error", "error": {"type": "invalid_request_error", "message": message}}


BMP: Any = {"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": "AAAA"}}


def test_an_upstream_translation_error_names_the_block_where_the_client_sent_it(client: anthropic.Anthropic) -> None:
    turns: Any = [*HI, {"role": "assistant", "content": "a"},
                  {"role": "user", "content": [{"type": "text", "text": "x"}, BMP]}]  # fmt: skip
    with pytest.raises(anthropic.BadRequestError) as caught:  # the system prompt is the chat body's messages.[0]
        client.messages.create(model="claude", max_tokens=5, system="be brief", messages=turns)
    message: str = caught.value.body["error"]["message"]  # pyright: ignore[reportIndexIssue, reportUnknownVariableType, reportOptionalSubscript]
    assert message.startswith("messages.2.content.1: image type 'image/bmp'"), message
    assert "[" not in message.split(":")[0]
