"""What a request cost, from a per-model price table that the config can override (LiteLLM's field names)."""

from __future__ import annotations

from dataclasses import dataclass

from hub.accounts.usage import UsageRecord
from hub.config import ModelRoute

_M = 1_000_000


@dataclass(frozen=True, slots=True)
class Price:
    """USD per token; `cached_input` applies to the cached part of the prompt."""

    input: float
    output: float
    cached_input: float | None = None

    def cost(self, prompt: int, completion: int, cached: int) -> float:
        cached_rate = self.input if self.cached_input is None else self.cached_input
        return (prompt - cached) * self.input + cached * cached_rate + completion * self.output


# List prices in USD per million tokens (standard tier, prompts up to 200k tokens), as published by the vendors:
# - claude-sonnet-4-5: $3 input, $15 output, $0.30 cache reads (Anthropic pricing page).
# - gemini-3-flash-preview: $0.50 input (text/image/video), $3.00 output including thinking, $0.05 context-cache
#   reads (ai.google.dev/gemini-api/docs/pricing, read 2026-07).
# - gpt-5-mini: $0.25 input, $2.00 output, $0.025 cached input (OpenAI pricing page, as mirrored in GitHub's
#   Copilot models-and-pricing table).
# Upstream names match by prefix, so dated snapshots (claude-sonnet-4-5-20250929, gpt-5-mini-2025-08-07) are priced.
PRICES: dict[str, Price] = {
    "claude-sonnet-4-5": Price(3.0 / _M, 15.0 / _M, 0.30 / _M),
    "gemini-3-flash-preview": Price(0.50 / _M, 3.00 / _M, 0.05 / _M),
    "gpt-5-mini": Price(0.25 / _M, 2.00 / _M, 0.025 / _M),
}

FREE = Price(0.0, 0.0, 0.0)


def table_price(upstream_model: str, table: dict[str, Price] = PRICES) -> Price | None:
    """The longest table entry that `upstream_model` starts with."""
    best: str | None = None
    for name in table:
        if upstream_model.startswith(name) and (best is None or len(name) > len(best)):
            best = name
    return table[best] if best is not None else None


def route_price(route: ModelRoute) -> Price:
    """The config's `input_cost_per_token` / `output_cost_per_token` win; else the table; else free (unknown)."""
    known = table_price(route.deployment.model)
    if route.input_cost_per_token is None and route.output_cost_per_token is None:
        return known or FREE
    base = known or FREE
    input_rate = base.input if route.input_cost_per_token is None else route.input_cost_per_token
    output = base.output if route.output_cost_per_token is None else route.output_cost_per_token
    cached = route.cache_read_input_token_cost
    if cached is None and route.input_cost_per_token is not None:
        cached = input_rate  # an overridden input price is not mixed with the table's cache discount
    return Price(input_rate, output, cached if cached is not None else base.cached_input)


class Pricer:
    """Prices per route, computed once per route object."""

    def __init__(self) -> None:
        self._prices: dict[int, Price] = {}

    def price(self, route: ModelRoute) -> Price:
        price = self._prices.get(id(route))
        if price is None:
            price = self._prices[id(route)] = route_price(route)
        return price

    def cost(self, route: ModelRoute, record: UsageRecord) -> float:
        return self.price(route).cost(record.prompt_tokens, record.completion_tokens, record.cached_tokens)
