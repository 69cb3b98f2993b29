"""Prices from the shipped table, by upstream model prefix, and the config's LiteLLM-style overrides."""

from __future__ import annotations

import pytest

from hub.accounts.pricing import FREE, Price, route_price, table_price
from hub.config import ModelRoute, parse_config


def route(**params: object) -> ModelRoute:
    entry = {"model_name": "m", "litellm_params": {"model": "openai/gpt-5-mini-2025-08-07", "api_key": "x", **params}}
    return parse_config({"model_list": [entry]}, {}).models["m"][0]


def mtok(price: Price | None) -> tuple[float, float, float | None]:
    """USD per million tokens, rounded away from float noise."""
    assert price is not None
    cached = None if price.cached_input is None else round(price.cached_input * 1e6, 6)
    return round(price.input * 1e6, 6), round(price.output * 1e6, 6), cached


def test_dated_snapshots_are_priced_by_the_longest_matching_entry() -> None:
    assert mtok(table_price("claude-sonnet-4-5-20250929")) == (3, 15, 0.3)
    assert mtok(table_price("gpt-5-mini-2025-08-07")) == (0.25, 2, 0.025)
    assert mtok(table_price("gemini-3-flash-preview")) == (0.5, 3, 0.05)
    assert table_price("some-local-model") is None


def test_cached_prompt_tokens_are_charged_at_the_cached_rate() -> None:
    price = route_price(route())
    # 1M prompt tokens of which 400k cached, 100k completion: 0.6*0.25 + 0.4*0.025 + 0.1*2.00
    assert price.cost(1_000_000, 100_000, 400_000) == pytest.approx(0.15 + 0.01 + 0.2)


def test_config_costs_override_the_table() -> None:
    price = route_price(route(input_cost_per_token=1e-6, output_cost_per_token=2e-6))
    assert mtok(price) == (1, 2, 1)
    assert mtok(route_price(route(output_cost_per_token=4e-6))) == (0.25, 4, 0.025)
    assert mtok(route_price(route(input_cost_per_token=1e-6, cache_read_input_token_cost=0.1e-6))) == (1, 2, 0.1)


def test_unknown_models_cost_nothing() -> None:
    entry = {
        "model_name": "m",
        "litellm_params": {"model": "openai/local-llama", "api_key": "x", "api_base": "http://x"},
    }
    assert route_price(parse_config({"model_list": [entry]}, {}).models["m"][0]) == FREE
