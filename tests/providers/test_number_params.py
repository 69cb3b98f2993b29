"""Anthropic and Gemini refuse a sampling or length field of the wrong type with one and the same 400, naming the
field and the provider (both use `providers.base.number_param`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from providers.base import ProviderError
from tests.providers.test_anthropic_input import refused as anthropic_refused
from tests.providers.test_gemini_input import refused as gemini_refused

REFUSED: dict[str, Callable[[dict[str, Any]], ProviderError]] = {
    "anthropic": anthropic_refused,
    "gemini": gemini_refused,
}


@pytest.mark.parametrize("provider", ["anthropic", "gemini"])
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"temperature": "0.5"}, "Invalid type for 'temperature': expected a number, got '0.5'."),
        ({"temperature": True}, "Invalid type for 'temperature': expected a number, got True."),
        ({"top_p": [1]}, "Invalid type for 'top_p': expected a number, got [1]."),
        ({"top_k": 2.5}, "Invalid type for 'top_k': expected an integer, got 2.5."),
    ],
)
def test_a_number_field_of_the_wrong_type_is_a_400_naming_it(
    provider: str, fields: dict[str, Any], message: str
) -> None:
    error = REFUSED[provider](fields)
    name = next(iter(fields))
    assert (error.status_code, error.provider, error.type, error.code, error.param, error.message) == (
        400, provider, "invalid_request_error", "invalid_type", name, message
    )  # fmt: skip
