"""The gateway's final 429 carries a sane `retry-after`: whole seconds from 0 to MAX_RETRY_AFTER, or none when the
upstream's cannot be read as a delay. Fake upstreams on loopback answer the 429s; the official SDK is the client."""

from __future__ import annotations

import email.utils
from typing import Any

import openai
import pytest

from hub.router.classify import MAX_RETRY_AFTER, client_retry_headers
from tests.e2e.router_support import gateway
from tests.router.test_retry_after import deployment, upstream

CAP = str(int(MAX_RETRY_AFTER))
NOW = 1_800_000_000.0


def final_429(headers: dict[str, str], **router: Any) -> openai.RateLimitError:
    """What the SDK gets when the group "big" and its fallback "other" both answer 429 with `headers`."""
    with upstream(headers) as (first, base), upstream(headers) as (second, other):
        models = [deployment("big", base), deployment("other", other)]
        with gateway(models, fallbacks=[{"big": ["other"]}], **router) as gw:
            with pytest.raises(openai.RateLimitError) as caught:
                gw.client.chat.completions.create(model="big", messages=[{"role": "user", "content": "hello"}])
    assert first.calls == 1 and second.calls == 1
    assert caught.value.response.headers["x-litellm-attempted-fallbacks"] == "1"
    return caught.value


@pytest.mark.parametrize(
    ("sent", "shown"),
    [
        ("-5", None),  # a negative delay is none: dropped, the SDK backs off on its own
        ("soon", None),
        ("nan", None),
        ("999999", CAP),
        ("inf", CAP),
        ("Fri, 31 Dec 9999 23:59:59 GMT", CAP),
        ("Thu, 01 Jan 1970 00:00:01 GMT", "0"),  # a date already past: retry now
        ("2.2", "3"),
        ("7", "7"),
    ],
)
def test_the_final_429_after_every_fallback_carries_a_sane_retry_after(sent: str, shown: str | None) -> None:
    error = final_429({"retry-after": sent}, num_retries=0)
    assert error.response.headers.get("retry-after") == shown


def test_the_final_429_caps_retry_after_ms_too_and_drops_a_negative_one() -> None:
    error = final_429({"retry-after-ms": "99999999", "retry-after": "-1"}, num_retries=0)
    assert error.response.headers.get("retry-after-ms") == str(int(MAX_RETRY_AFTER * 1000))
    assert "retry-after" not in error.response.headers


def test_a_client_sees_no_delay_header_for_a_date_it_cannot_read_and_whole_seconds_for_one_it_can() -> None:
    soon = email.utils.formatdate(NOW + 12.5, usegmt=True)
    assert client_retry_headers({"Retry-After": soon, "x-other": "1"}, now=NOW) == {"retry-after": "12",
                                                                                     "x-other": "1"}  # fmt: skip
    assert client_retry_headers({"Retry-After": "Fri, 99 Foo 2026"}, now=NOW) == {}
    assert client_retry_headers({"retry-after-ms": soon}, now=NOW) == {}  # milliseconds are never a date
    assert client_retry_headers({"retry-after-ms": "1500.5", "retry-after": "0"}) == {"retry-after-ms": "1501",
                                                                                       "retry-after": "0"}  # fmt: skip
