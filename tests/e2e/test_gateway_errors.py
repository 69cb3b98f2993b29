"""What /v1 error answers tell a caller, over real sockets with the openai SDK: a key limited to some models learns
nothing about the others."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import openai
import pytest

from hub.config import parse_config
from hub.server import build_app
from tests.fakes.openai_upstream import API_KEY, FakeOpenAI
from tests.support.servers import serve_app

MASTER_KEY = "sk-toolhub-errors-master"
USER = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(gateway URL, a virtual key limited to the model "text")."""
    database = tmp_path_factory.mktemp("errors") / "hub.db"
    with serve_app(FakeOpenAI().app) as upstream:
        models = [
            {"model_name": name, "litellm_params": {"model": "openai/text", "api_base": f"{upstream}/v1",
                                                    "api_key": API_KEY}}
            for name in ("text", "secret-model")
        ]  # fmt: skip
        config = {"model_list": models, "general_settings": {"master_key": MASTER_KEY,
                                                             "database_url": f"sqlite:///{database}"}}  # fmt: skip
        with serve_app(build_app(parse_config(config, {}))) as url:
            created = httpx2.post(
                f"{url}/key/generate", headers={"Authorization": f"Bearer {MASTER_KEY}"}, json={"models": ["text"]}
            )
            assert created.status_code == 200, created.text
            yield url, created.json()["key"]


def refusal(url: str, key: str, model: str) -> openai.APIStatusError:
    with openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0) as client:
        with pytest.raises(openai.APIStatusError) as exc_info:
            client.chat.completions.create(model=model, messages=USER)  # pyright: ignore[reportArgumentType]
    return exc_info.value


def test_a_limited_key_gets_one_answer_for_unknown_and_forbidden_models(gateway: tuple[str, str]) -> None:
    url, key = gateway
    forbidden, unknown = refusal(url, key, "secret-model"), refusal(url, key, "no-such-model")
    assert (forbidden.status_code, unknown.status_code) == (403, 403)
    assert forbidden.body == {
        "message": "This key may not use the model 'secret-model'. Models it may use: text.",
        "type": "permission_error",
        "param": "model",
        "code": "model_not_allowed",
    }
    assert unknown.body == {**forbidden.body, "message": forbidden.body["message"].replace("secret-model",  # pyright: ignore[reportIndexIssue, reportAttributeAccessIssue, reportUnknownMemberType]
                                                                                          "no-such-model")}  # fmt: skip
    assert "secret-model" not in str(unknown.body)


def test_the_master_key_is_told_every_model_served(gateway: tuple[str, str]) -> None:
    url, _ = gateway
    error = refusal(url, MASTER_KEY, "no-such-model")
    assert (error.status_code, error.code) == (404, "model_not_found")
    assert error.message.endswith("Models served here: secret-model, text.")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/v1/chat/completions", 405), ("PUT", "/v1/models", 405), ("GET", "/v1/no-such-path", 404)],
)
def test_routing_errors_on_v1_are_openai_shaped(gateway: tuple[str, str], method: str, path: str, status: int) -> None:
    url, _ = gateway
    response = httpx2.request(method, f"{url}{path}", headers={"Authorization": f"Bearer {MASTER_KEY}"})
    assert (response.status_code, response.headers["content-type"]) == (status, "application/json")
    assert response.json()["error"]["type"] == "invalid_request_error"
