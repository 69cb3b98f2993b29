"""The per-request `cache` object of LiteLLM: `no-cache`, `no-store`, `ttl`, `s-maxage`, `namespace`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from hub.errors import BadRequest

_FLAGS = ("no-cache", "no-store")
_SECONDS = ("ttl", "s-maxage")
_NAMESPACE = re.compile(r"[!-~]+")
MAX_SECONDS = 10**9
"""The bound (excluded) of `ttl` and `s-maxage`, about 31.7 years; the refusal names it."""


@dataclass(frozen=True, slots=True)
class Controls:
    no_cache: bool = False
    """Skip the lookup (the answer is still stored unless `no_store`)."""
    no_store: bool = False
    ttl: float | None = None
    s_maxage: float | None = None
    """Accept only entries younger than this many seconds."""
    namespace: str | None = None


NONE = Controls()


def parse_controls(value: Any) -> Controls:
    """Read the body's `cache` object.

    Raises:
        BadRequest: not an object, an unknown control, or a value of the wrong type.
    """
    if value is None:
        return NONE
    if not isinstance(value, dict):
        raise _bad(f"'cache' must be an object, got {type(value).__name__}")  # pyright: ignore[reportUnknownArgumentType]
    for name, item in value.items():  # pyright: ignore[reportUnknownVariableType]
        _check(str(name), item)  # pyright: ignore[reportUnknownArgumentType]
    return Controls(
        no_cache=bool(value.get("no-cache")),  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
        no_store=bool(value.get("no-store")),  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
        ttl=value.get("ttl"),  # pyright: ignore[reportUnknownMemberType]
        s_maxage=value.get("s-maxage"),  # pyright: ignore[reportUnknownMemberType]
        namespace=value.get("namespace"),  # pyright: ignore[reportUnknownMemberType]
    )


def _check(name: str, item: Any) -> None:
    if name in _FLAGS:
        if not isinstance(item, bool):
            raise _bad(f"'cache.{name}' must be true or false")
    elif name in _SECONDS:
        if isinstance(item, bool) or not isinstance(item, int | float) or not 0 <= item < MAX_SECONDS:
            raise _bad(f"'cache.{name}' must be a number of seconds from 0 to less than {MAX_SECONDS:,}")
    elif name == "namespace":  # it prefixes the key sent back in `x-litellm-cache-key`: a header value
        if not isinstance(item, str) or not 0 < len(item) <= 200 or not _NAMESPACE.fullmatch(item):
            raise _bad("'cache.namespace' must be 1 to 200 printable ASCII characters (no spaces)")
    else:
        known = ", ".join((*_FLAGS, *_SECONDS, "namespace"))
        raise _bad(f"unknown cache control 'cache.{name}' (known: {known})")


def _bad(message: str) -> BadRequest:
    return BadRequest(message, code="invalid_cache_control", param="cache")
