"""Keys Toolhub implements that have no effect where the file sets them, and why.

They are listed in `Config.ignored` with the keys Toolhub does not implement (so check-config and reloads treat them
alike), but telling a user that `max_sessions` "is not implemented" would send them looking for a missing feature
rather than at the setting beside it that disables it; the start warning gives the reason instead.
"""

from __future__ import annotations

import re

from hub.mcp.config import PER_CLIENT_KEYS

_REASONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(rf"^mcp_servers\.[^.]+\.(?:{'|'.join(PER_CLIENT_KEYS)})$"),
        "it bounds per-client upstream sessions, which a `session: shared` server (the default) never opens; "
        "set `session: per_client` or `auto` to use it",
    ),
    (
        re.compile(r"^model_list\[\d+\]\.litellm_params\.cache_control_injection_points$"),
        "prompt-cache points are Anthropic's `cache_control`, sent to `anthropic/` deployments only",
    ),
)


def no_effect(path: str) -> str | None:
    """Why the ignored key at `path` does nothing although Toolhub implements it; None for a key it does not."""
    return next((reason for pattern, reason in _REASONS if pattern.match(path)), None)
