"""Choosing a deployment for an alias."""

from __future__ import annotations

import pytest

from hub.accounts.auth import MASTER, Principal
from hub.config import parse_config
from hub.errors import NotFound, PermissionDenied, ServiceUnavailable
from hub.gateway.routing import ModelRouter
from providers._http import HttpPool


def router(raw: dict[str, object], environ: dict[str, str]) -> ModelRouter:
    return ModelRouter(parse_config(raw, environ).models, HttpPool())


def entry(name: str, key: str, base: str) -> dict[str, object]:
    return {
        "model_name": name,
        "litellm_params": {"model": "openai/gpt-x", "api_key": f"os.environ/{key}", "api_base": base},
    }


def test_deployments_of_an_alias_are_used_in_turn() -> None:
    r = router(
        {"model_list": [entry("gpt", "A", "http://a/v1"), entry("gpt", "B", "http://b/v1")]}, {"A": "1", "B": "2"}
    )
    assert [r.resolve("gpt", MASTER).route.deployment.api_base for _ in range(4)] == ["http://a/v1", "http://b/v1"] * 2


def test_a_deployment_whose_key_is_unset_is_skipped_while_another_can_serve() -> None:
    r = router({"model_list": [entry("gpt", "A", "http://a/v1"), entry("gpt", "B", "http://b/v1")]}, {"A": "1"})
    assert {r.resolve("gpt", MASTER).route.deployment.api_base for _ in range(4)} == {"http://a/v1"}


def test_an_alias_with_no_usable_deployment_names_the_variable() -> None:
    r = router({"model_list": [entry("gpt", "A", "http://a/v1")]}, {})
    with pytest.raises(ServiceUnavailable) as exc_info:
        r.resolve("gpt", MASTER)
    assert "A" in exc_info.value.message and exc_info.value.code == "missing_provider_key"


def test_unknown_and_forbidden_models() -> None:
    r = router({"model_list": [entry("gpt", "A", "http://a/v1")]}, {"A": "1"})
    with pytest.raises(NotFound):
        r.resolve("nope", MASTER)
    with pytest.raises(PermissionDenied):
        r.resolve("gpt", Principal(key_id="k", models=frozenset({"other"})))


def test_a_key_limited_to_some_models_cannot_tell_unknown_models_from_forbidden_ones() -> None:
    models = [entry("gpt", "A", "http://a/v1"), entry("secret", "A", "http://s/v1"), entry("mini", "A", "http://m/v1")]
    r = router({"model_list": models}, {"A": "1"})
    limited = Principal(key_id="k", models=frozenset({"mini", "gone"}))
    errors: list[PermissionDenied] = []
    for alias in ("secret", "nope"):
        with pytest.raises(PermissionDenied) as exc_info:
            r.resolve(alias, limited)
        errors.append(exc_info.value)
    assert [e.to_openai()["error"] for e in errors] == [
        {
            "message": f"This key may not use the model '{alias}'. Models it may use: mini.",
            "type": "permission_error",
            "param": "model",
            "code": "model_not_allowed",
        }
        for alias in ("secret", "nope")
    ]


def test_an_unknown_model_lists_every_alias_to_a_key_that_may_use_them_all() -> None:
    r = router({"model_list": [entry("gpt", "A", "http://a/v1"), entry("mini", "A", "http://m/v1")]}, {"A": "1"})
    with pytest.raises(NotFound) as exc_info:
        r.resolve("nope", MASTER)
    assert exc_info.value.message == "The model 'nope' does not exist. Models served here: gpt, mini."
