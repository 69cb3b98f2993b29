"""What the gateway records about each request, and the seam where records leave the request path."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from providers.base import ProviderError, bad_response

if TYPE_CHECKING:
    from hub.accounts.auth import Principal
    from hub.config import ModelRoute


MAX_COUNT = 2**63
"""Counts are stored in 64-bit integer columns: one at or beyond this is no count any upstream means."""


@dataclass(slots=True)
class UsageRecord:
    """One chat request's accounting, built on the request path and handed to a `UsageSink`."""

    request_id: str
    key_id: str | None
    model_alias: str
    upstream_model: str
    provider: str
    status_code: int
    stream: bool
    latency_ms: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    error: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])
    """Tools the gateway ran for this request: dicts with server, tool, duration_ms, error."""
    cost: float = 0.0
    """USD, from `hub.accounts.pricing`; set when the request finishes."""
    upstream_ms: float = 0.0
    """Time spent waiting on the provider (to the first chunk for streams); latency minus this is overhead."""
    created_at: float = 0.0
    """Unix time the request finished."""
    cache_hit: bool = False
    """Served from the response cache (hub/cache): no upstream call, no tokens, zero cost."""
    answered_group: str = ""
    """The model group that answered when the router fell back to another one (empty: the requested one)."""
    api_base: str = ""
    """The api_base of the deployment that answered (empty: the provider's default)."""
    retries: int = 0
    """Attempts the router repeated, in any group."""
    fallbacks: int = 0
    """Fallback groups the router tried."""
    priced_route: ModelRoute | None = field(default=None, repr=False, compare=False)
    """The deployment that answered, when the router fell back or balanced to another one than the request was
    admitted on: the request is priced at its prices (a tool loop whose rounds were answered by different
    deployments is priced at the last one's; not stored)."""
    ticket: Ticket | None = field(default=None, repr=False, compare=False)
    """Set by the guard's `admit`; `hub.gateway.chat` settles it when the request finishes (not stored)."""

    def add_usage(self, usage: dict[str, Any] | None) -> None:
        """Take counts from an OpenAI `usage` object (prompt includes cached, completion includes reasoning).

        Raises:
            ProviderError: 502 `upstream_bad_response` when a count is not a non-negative integer (nothing is added).
        """
        if not usage:
            return
        prompt, completion, cached, reasoning = usage_counts(usage, self.provider)
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        self.cached_tokens += cached
        self.reasoning_tokens += reasoning


CHAT_FIELDS = ("prompt_tokens", "completion_tokens", "prompt_tokens_details", "completion_tokens_details")
RESPONSES_FIELDS = ("input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details")
"""The Responses API's names for `CHAT_FIELDS` (its details have the same `cached_tokens`, `reasoning_tokens`)."""


def usage_counts(
    usage: Any, provider: str, fields: tuple[str, str, str, str] = CHAT_FIELDS
) -> tuple[int, int, int, int]:
    """(prompt, completion, cached, reasoning) from an OpenAI `usage` object (`fields`: its names for the prompt and
    completion counts and their details); a missing or null count is 0.

    An upstream's counts are charged to keys: a negative one would credit the key, a float or a string is a count
    nobody can vouch for, so anything but a non-negative integer makes the answer a bad one rather than a guess.

    Raises:
        ProviderError: 502 `upstream_bad_response` naming the field as the upstream named it.
    """
    if not isinstance(usage, dict):
        raise _bad_usage("usage", usage, provider)
    prompt, completion, prompt_details, completion_details = fields
    return (
        _count(usage, prompt, provider),
        _count(usage, completion, provider),
        _count(_details(usage, prompt_details, provider), "cached_tokens", provider),
        _count(_details(usage, completion_details, provider), "reasoning_tokens", provider),
    )


def _details(usage: dict[str, Any], name: str, provider: str) -> dict[str, Any]:
    details = usage.get(name)
    if details is None:
        return {}
    if not isinstance(details, dict):
        raise _bad_usage(name, details, provider)
    return details  # pyright: ignore[reportUnknownVariableType]


def _count(usage: dict[str, Any], name: str, provider: str) -> int:
    value = usage.get(name)
    if value is None:
        return 0
    if type(value) is not int or not 0 <= value < MAX_COUNT:
        raise _bad_usage(name, value, provider)
    return value


def _bad_usage(name: str, value: Any, provider: str) -> ProviderError:
    message = f"The upstream sent an unreadable token count: {name} = {repr(value)[:100]} (not a non-negative integer)."
    return bad_response(provider, message)


@dataclass(slots=True)
class ToolCallRecord:
    """One MCP tool call made through the hub (from `/mcp`, the REST tool endpoints or the tool loop)."""

    server: str
    tool: str
    duration_ms: float
    error: str | None = None
    key_id: str | None = None
    request_id: str = ""
    created_at: float = 0.0


class UsageSink(Protocol):
    def record(self, record: UsageRecord) -> None:
        """Take a record without blocking; storing it happens off the request path."""
        ...

    def record_tool_call(self, call: ToolCallRecord) -> None:
        """Take a tool call record without blocking (the MCP hub calls this after each `tools/call`)."""
        ...


class NullSink:
    """Keeps nothing: used when no store is configured."""

    def record(self, record: UsageRecord) -> None:
        return None

    def record_tool_call(self, call: ToolCallRecord) -> None:
        return None


class Ticket(Protocol):
    def check(self, record: UsageRecord) -> None:
        """Raise RateLimited when the key's budget is used up, counting this request's usage so far (the tool loop
        asks before each round)."""
        ...

    def settle(self, record: UsageRecord) -> None:
        """Price the finished request and charge its key (synchronously: budgets must see it at once)."""
        ...


class Guard(Protocol):
    """Budgets and rate limits around one chat request (see `hub.accounts.accounting`)."""

    async def admit(self, principal: Principal, route: ModelRoute, body: Mapping[str, Any] | None = None) -> Ticket:
        """Raise RateLimited (429) when a key's budget or a key/deployment rate limit refuses the request; `body`
        (the request's) sizes what the request may cost."""
        ...


def estimated_usage(messages: list[Any], generated_chars: int = 0) -> dict[str, int]:
    """The usage of an answer cut before the upstream reported it (a stream the client left or the shutdown ended, a
    tool loop's round in progress): ~4 characters a token, the prompt from the messages' JSON. The upstream bills
    what it generated; without this a client could leave just before the end and have those tokens free."""
    try:
        prompt = len(orjson.dumps(messages))
    except TypeError:  # orjson.JSONEncodeError: a value orjson cannot write (never from a parsed request)
        prompt = len(repr(messages))
    return {"prompt_tokens": math.ceil(prompt / 4), "completion_tokens": math.ceil(generated_chars / 4)}
