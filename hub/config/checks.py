"""Checks of config values that need more than their schema."""

from __future__ import annotations

from urllib.parse import urlsplit


def url_problem(url: str) -> str | None:
    """Why the upstream client (providers/_wire) could not call `url`: caught here rather than as a 502 on the first
    request. The URL is not echoed: it may hold credentials or a key."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a port out of range or not a number
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host (for example http://localhost:11434/v1)"
    return None
