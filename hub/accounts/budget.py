"""Budgets that hold under concurrency: each request holds its worst-case cost while it runs.

A key with `max_budget` admits a request only while spent + reserved + this request's worst case fits the budget,
where the worst case is its prompt (estimated from its characters) plus `max_tokens` (or the model's output limit)
at the route's prices. When the request finishes its hold is released and its real cost charged. A request whose
worst case cannot fit even alone runs only when nothing else of the key is in flight, as a lone request always did:
so a key's spend passes its budget by one request at most, however many arrive at once.

`MemoryBudgets` holds in this process (the check-and-hold never awaits, so it is atomic). `RedisBudgets`
(`hub.accounts.shared_budget`) holds in Redis for every process sharing it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from hub.accounts.pricing import Price
from hub.accounts.spend import Account

CHARS_PER_TOKEN = 3
"""Prompt tokens are estimated at one per 3 characters (English runs ~4, code ~3): an estimate on the high side."""
TOKENS_PER_MESSAGE = 4
IMAGE_TOKENS = 1_600
"""An image part, whatever its size (a 1024x1024 image is ~765 tokens on OpenAI, ~1,600 on Anthropic)."""
_IMAGE_TYPES = frozenset({"image_url", "input_image", "image"})
# Output limits in tokens, as published by the vendors (model cards, read 2026-07); upstream names match by prefix.
OUTPUT_LIMITS: dict[str, int] = {
    "claude-sonnet-4-5": 64_000,
    "gemini-3-flash-preview": 65_536,
    "gpt-5-mini": 128_000,
}
DEFAULT_OUTPUT_LIMIT = 16_384
"""A model of unknown output limit without `max_tokens` is assumed to answer at most this many tokens."""


def output_limit(upstream_model: str) -> int:
    best = max((name for name in OUTPUT_LIMITS if upstream_model.startswith(name)), key=len, default=None)
    return DEFAULT_OUTPUT_LIMIT if best is None else OUTPUT_LIMITS[best]


def prompt_tokens(body: Mapping[str, Any]) -> int:
    """An estimate on the high side of the tokens of a request's messages (or embedding inputs) and tools."""
    count = _Count()
    messages = body.get("messages")
    if isinstance(messages, list):
        count.messages(messages)  # pyright: ignore[reportUnknownArgumentType]
        count.tokens += TOKENS_PER_MESSAGE * len(messages) + 3  # pyright: ignore[reportUnknownArgumentType]
    count.walk(body.get("tools"))
    count.walk(body.get("input"))
    return count.tokens + math.ceil(count.chars / CHARS_PER_TOKEN)


def output_tokens(body: Mapping[str, Any], upstream_model: str) -> int:
    """`max_completion_tokens` or `max_tokens` (or the model's limit) times `n`; 0 for an embeddings request."""
    if "messages" not in body:
        return 0
    most = body.get("max_completion_tokens") or body.get("max_tokens")
    if type(most) is not int or most <= 0:
        most = output_limit(upstream_model)
    n = body.get("n")
    return most * (n if type(n) is int and n > 1 else 1)


def worst_case(price: Price, upstream_model: str, body: Mapping[str, Any] | None) -> float:
    """The most a request can cost at `price` (without its body: the model's output limit, prompt unknown)."""
    if price.input == 0 and price.output == 0:
        return 0.0
    if body is None:
        return price.cost(0, output_limit(upstream_model), 0)
    return price.cost(prompt_tokens(body), output_tokens(body, upstream_model), 0)


class _Count:
    __slots__ = ("chars", "tokens")

    def __init__(self) -> None:
        self.chars = 0
        self.tokens = 0

    def messages(self, messages: list[Any]) -> None:
        """Count the text of each message (its role and names are in `TOKENS_PER_MESSAGE`): the common shapes without
        walking every node (100 messages of 2 KB: 128 us walked, ~32 us so)."""
        for message in messages:
            if type(message) is not dict:
                self.walk(message)
                continue
            content = message.get("content")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
            if type(content) is str:
                self.chars += len(content)
            elif type(content) is list:
                self.parts(content)  # pyright: ignore[reportUnknownArgumentType]
            elif content is not None:
                self.walk(content)
            calls = message.get("tool_calls")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
            if calls is not None:
                self.walk(calls)

    def parts(self, parts: list[Any]) -> None:
        for part in parts:
            text = part.get("text") if type(part) is dict else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
            if type(text) is str:
                self.chars += len(text)
            else:
                self.walk(part)

    def walk(self, value: Any) -> None:
        if isinstance(value, str):
            if value.startswith("data:") and len(value) > 256:  # an inline image or file: not priced by its size
                return
            self.chars += len(value)
        elif isinstance(value, dict):
            if value.get("type") in _IMAGE_TYPES:  # pyright: ignore[reportUnknownMemberType]
                self.tokens += IMAGE_TOKENS
            for item in value.values():  # pyright: ignore[reportUnknownVariableType]
                self.walk(item)
        elif isinstance(value, list):
            for item in value:  # pyright: ignore[reportUnknownVariableType]
                self.walk(item)


@dataclass(slots=True, eq=False)
class Hold:
    """One request's reservation; `keys` empty: held in this process's `Account`."""

    account: Account
    amount: float
    id: str = ""
    keys: tuple[str, ...] = ()
    done: bool = False


class Budgets(Protocol):
    async def reserve(self, token_hash: str, account: Account, amount: float) -> Hold:
        """Hold `amount` against the key's budget. Raises RateLimited (`budget_exceeded`, `budget_reserved`)."""
        ...

    def settle(self, hold: Hold, cost: float) -> None:
        """Release the hold and charge the real cost (synchronously in this process; shared state follows)."""
        ...


class MemoryBudgets:
    """Holds in this process: budgets hold for one process (and catch up with others through the store)."""

    async def reserve(self, token_hash: str, account: Account, amount: float) -> Hold:
        account.reserve(amount)
        return Hold(account, amount)

    def settle(self, hold: Hold, cost: float) -> None:
        if not hold.done:
            hold.done = True
            hold.account.release(hold.amount)
            hold.account.charge(cost)
