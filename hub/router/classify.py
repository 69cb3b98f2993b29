"""Which kind of failure an upstream error is, for retries, cooldowns and fallbacks.

    context_window   the prompt is too long for the model (a 400): no retry, context_window_fallbacks
    content_policy   the provider refused the content (a 400 or a blocked prompt): content_policy_fallbacks
    rate_limit       429: cools the deployment at least for its retry-after; retried and fallen back
    timeout          the upstream did not answer in time (408, 504 or our own timeout)
    server           5xx, 529, connection refused or broken, unreadable answers
    client           any other 4xx: the caller's request is wrong; never retried, never fallen back

Each provider's own texts are recognised, as its API reference gives them and the fakes in tests/fakes/ answer:
OpenAI's `context_length_exceeded` and `invalid_prompt`, Azure's `content_filter`, Anthropic's "prompt is too long"
and "content filtering policy", Gemini's "input token count ... exceeds the maximum" and its blocked prompt
(`content_policy_violation`).
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping

from hub.router.config import ErrorKind
from providers.base import ProviderError

_CONTEXT_CODES = frozenset({"context_length_exceeded", "model_context_window_exceeded", "string_above_max_length"})
_CONTEXT_TEXTS = (
    "maximum context length",
    "context_length_exceeded",
    "prompt is too long",
    "exceed context limit",
    "input token count",
    "exceeds the maximum number of tokens",
    "context window",
    "too many tokens",
)
_POLICY_CODES = frozenset({"content_policy_violation", "content_filter", "invalid_prompt", "prohibited_content"})
_POLICY_TEXTS = ("content filtering policy", "usage policy", "content management policy", "content policy")
_DELAY_UNITS = {"retry-after": 1.0, "retry-after-ms": 1000.0}
MAX_RETRY_AFTER = 60.0
"""The longest upstream `retry-after` the router honours, in seconds: it waits that long at most before a retry, and
a longer one means no retry on that deployment now (the fallbacks answer at once). The Anthropic SDK's bound (the
openai SDK's was 60 s too; from openai 3.x it is 120 s): a gateway holds its client's connection while it waits."""


def classify(error: ProviderError) -> ErrorKind:
    """The kind of `error` (see the module docstring)."""
    status = error.upstream_status or error.status_code
    if status == 429:
        return "rate_limit"
    if status in (400, 413, 422):
        return _bad_request(error)
    if status in (408, 504) or error.code == "upstream_timeout":
        return "timeout"
    if status >= 500 or error.retryable:
        return "server"
    return "client"


def _bad_request(error: ProviderError) -> ErrorKind:
    code = (error.code or "").lower()
    text = error.message.lower()
    if code in _CONTEXT_CODES or any(t in text for t in _CONTEXT_TEXTS):
        return "context_window"
    if code in _POLICY_CODES or any(t in text for t in _POLICY_TEXTS):
        return "content_policy"
    return "client"


def retry_after(error: ProviderError, now: float | None = None) -> float | None:
    """Seconds the upstream asked us to wait (`retry-after-ms`, `retry-after` in seconds or as an HTTP date).

    None: no such header, or one that is neither a number nor a date (then the router backs off as without one).
    `math.inf`: a number that is no delay (negative, `nan`, `inf`, or past a float): the router must not wait for it,
    as for one longer than `MAX_RETRY_AFTER`. A date already past is 0.
    """
    headers = {k.lower(): v for k, v in error.headers.items()}
    if (ms := headers.get("retry-after-ms")) is not None and (seconds := _seconds(ms, 1000.0)) is not None:
        return seconds
    raw = headers.get("retry-after")
    if raw is None:
        return None
    if (seconds := _seconds(raw, 1.0)) is not None:
        return seconds
    return _date_delay(raw, now)


def client_retry_headers(headers: Mapping[str, str], now: float | None = None) -> dict[str, str]:
    """`headers` with the upstream's `retry-after` (whole seconds) and `retry-after-ms` as the gateway's client gets
    them: from 0 to `MAX_RETRY_AFTER`, the longest the router itself waits; a negative, `nan` or unreadable one is
    dropped (the client backs off as without one). An SDK honours a sane value, so an upstream's senseless one
    must not reach it as the gateway's own advice."""
    out = {k: v for k, v in headers.items() if k.lower() not in _DELAY_UNITS}
    for key, raw in headers.items():
        unit = _DELAY_UNITS.get(key.lower())
        if unit is not None and (delay := _client_delay(raw, unit, now)) is not None:
            out[key.lower()] = str(delay)
    return out


def _client_delay(raw: str, unit: float, now: float | None) -> int | None:
    """A delay header's value, in its own `unit` per second, rounded up and capped; None if it is no delay."""
    try:
        value: float | None = float(raw)
    except ValueError:
        date = _date_delay(raw, now) if unit == 1.0 else None  # only retry-after may be an HTTP date
        value = None if date is None else date * unit
    if value is None or not value >= 0.0:  # nan fails the comparison too
        return None
    return math.ceil(min(value, MAX_RETRY_AFTER * unit))


def _date_delay(raw: str, now: float | None) -> float | None:
    """Seconds until an HTTP date (0 if past); None if `raw` is no date."""
    try:
        when = email.utils.parsedate_to_datetime(raw).timestamp()
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def _seconds(raw: str, per_second: float) -> float | None:
    """A delay header's number in seconds; None if it is not a number, `math.inf` if it is no delay."""
    try:
        value = float(raw) / per_second
    except ValueError:
        return None
    return value if 0.0 <= value < math.inf else math.inf  # nan fails the comparison too
