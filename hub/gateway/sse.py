"""Server-sent events as the gateway writes them (OpenAI's stream framing)."""

from __future__ import annotations

from typing import Any

import orjson

HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
"""Response headers of every stream: no caching, and no buffering in nginx-style proxies."""
DONE = b"data: [DONE]\n\n"


def event(data: Any) -> bytes:
    """One `data:` event carrying `data` as JSON."""
    return b"data: " + orjson.dumps(data) + b"\n\n"
