"""Checks of config values that need more than their schema."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from hub.config.errors import ConfigError
from hub.mcp.config import McpServerSpec

MODEL_INFO_PRICES = ("input_cost_per_token", "output_cost_per_token", "cache_read_input_token_cost")
"""Prices LiteLLM also reads from `model_info` (its custom pricing); those in `litellm_params` win."""


def url_problem(url: str, example: str = "http://localhost:11434/v1") -> str | None:
    """Why the upstream client (providers/_wire, or the MCP client) could not call `url`: caught here rather than
    as a 502 on the first request, or an MCP server retried forever. The URL is not echoed: it may hold credentials
    or a key."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a port out of range or not a number
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"must be an http:// or https:// URL with a host (for example {example})"
    if any(ord(char) < 0x20 or char == "\x7f" for char in url):
        return "not a valid URL (it contains a control character)"
    return None


def check_mcp_launch(spec: McpServerSpec, where: str) -> None:
    """Refuse what would fail every connection to the server, retried forever, rather than found at start: a URL
    the client cannot call (not echoed: it may hold a token), a NUL character no process can be started with."""
    if spec.kind != "stdio":
        if spec.url is not None and (problem := url_problem(spec.url, example="http://localhost:3000/mcp")):
            raise ConfigError(f"{where}.url", problem)
        return
    env = [*spec.env, *spec.env.values()]
    for key, values in {
        "command": [spec.command or ""],
        "args": spec.args,
        "cwd": [spec.cwd or ""],
        "env": env,
    }.items():
        if any("\0" in value for value in values):
            raise ConfigError(f"{where}.{key}", "contains a NUL character, which no process can be started with")


def model_info_prices(model_info: Mapping[str, Any] | None, where: str) -> dict[str, float]:
    """The prices LiteLLM users put in `model_info` (`MODEL_INFO_PRICES`), each a finite number, 0 or more."""
    prices: dict[str, float] = {}
    for key in MODEL_INFO_PRICES:
        value = (model_info or {}).get(key)
        if value is None:
            continue
        try:
            price = float(value) if not isinstance(value, bool) else math.nan
        except (TypeError, ValueError):
            price = math.nan
        if not (math.isfinite(price) and price >= 0):
            raise ConfigError(f"{where}.model_info.{key}", f"must be a number of dollars, 0 or more (got {value!r})")
        prices[key] = price
    return prices
