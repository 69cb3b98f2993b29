"""Upstream errors sorted into the kinds that decide retries, cooldowns and fallbacks (real provider bodies)."""

from __future__ import annotations

import json
import math

import pytest

from hub.router.classify import classify, retry_after
from providers import openai
from providers._http import ErrorParser, connect_error, error_from_response, timeout_error
from providers.anthropic import response as anthropic
from providers.base import ProviderError
from providers.gemini import response as gemini
from tests.fakes.faults import (
    ANTHROPIC_CONTEXT,
    ANTHROPIC_OVERLOADED,
    ANTHROPIC_POLICY,
    GEMINI_CONTEXT,
    OPENAI_400,
    OPENAI_401,
    OPENAI_429,
    OPENAI_500,
    OPENAI_CONTEXT,
    OPENAI_POLICY,
    Fault,
)

PARSERS: dict[str, ErrorParser] = {
    "openai": openai.parse_error,
    "anthropic": anthropic.parse_error,
    "gemini": gemini.parse_error,
}


def upstream(provider: str, fault: Fault) -> ProviderError:
    """The ProviderError the provider layer builds from this answer."""
    error = error_from_response(provider, fault.status, json.dumps(fault.body).encode(), PARSERS[provider])
    error.headers = dict(fault.headers)
    return error


@pytest.mark.parametrize(
    ("provider", "fault", "kind"),
    [
        ("openai", OPENAI_CONTEXT, "context_window"),
        ("anthropic", ANTHROPIC_CONTEXT, "context_window"),
        ("gemini", GEMINI_CONTEXT, "context_window"),
        ("openai", OPENAI_POLICY, "content_policy"),
        ("anthropic", ANTHROPIC_POLICY, "content_policy"),
        ("openai", OPENAI_429, "rate_limit"),
        ("openai", OPENAI_500, "server"),
        ("anthropic", ANTHROPIC_OVERLOADED, "server"),
        ("openai", OPENAI_400, "client"),
        ("openai", OPENAI_401, "client"),
    ],
)
def test_each_providers_real_error_is_classified(provider: str, fault: Fault, kind: str) -> None:
    assert classify(upstream(provider, fault)) == kind


def test_a_gemini_blocked_prompt_is_a_content_policy_refusal() -> None:
    blocked = gemini._blocked("SAFETY", {"blockReason": "SAFETY"})  # pyright: ignore[reportPrivateUsage]
    assert classify(blocked) == "content_policy"


def test_connection_failures_and_timeouts_are_provider_failures() -> None:
    assert classify(connect_error("openai", "http://127.0.0.1:9/v1", ConnectionRefusedError())) == "server"
    assert classify(timeout_error("openai", 1.0)) == "timeout"


def test_a_client_error_404_or_413_is_the_callers() -> None:
    for status in (404, 413, 403):
        error = error_from_response("openai", status, b'{"error": {"message": "no"}}', openai.parse_error)
        assert classify(error) == "client"


def test_retry_after_in_seconds_milliseconds_or_as_a_date() -> None:
    def with_headers(**headers: str) -> ProviderError:
        return ProviderError("x", status_code=429, provider="openai", headers=headers)

    assert retry_after(with_headers(**{"retry-after": "2"})) == 2.0
    assert retry_after(with_headers(**{"retry-after-ms": "250", "retry-after": "9"})) == 0.25
    assert retry_after(with_headers(**{"Retry-After": "Thu, 01 Jan 1970 00:00:10 GMT"}), now=4.0) == 6.0
    assert retry_after(with_headers(**{"retry-after": "soon"})) is None
    assert retry_after(with_headers()) is None


def test_a_retry_after_that_is_no_delay_is_infinite_and_a_huge_one_is_kept() -> None:
    def asked(**headers: str) -> float | None:
        return retry_after(ProviderError("x", status_code=429, provider="openai", headers=headers), now=0.0)

    assert asked(**{"retry-after": "99999999999"}) == 99999999999.0
    assert asked(**{"retry-after": "Fri, 31 Dec 9999 23:59:59 GMT"}) == 253402300799.0
    assert asked(**{"retry-after": "Mon, 01 Jan 99999 00:00:00 GMT"}) is None  # no date a datetime can hold
    assert asked(**{"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 1445412480.0
    for number in ("inf", "-inf", "Infinity", "nan", "-5", "1e400", "9" * 400):
        assert asked(**{"retry-after": number}) == math.inf, number
        assert asked(**{"retry-after-ms": number, "retry-after": "1"}) == math.inf, number
    assert asked(**{"retry-after-ms": "soon", "retry-after": "1"}) == 1.0
