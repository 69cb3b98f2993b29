"""`WWW-Authenticate: Bearer` on the 401s of the MCP endpoints (RFC 6750 §3).

An MCP client that gets a 401 without a challenge assumes OAuth and starts its discovery (MCP Inspector does), which
hides the real cause: a missing or wrong key. The challenge names the realm, and when a key was sent, why it was
refused (`error="invalid_token"` and the refusal's message); without a key it carries no error code, as §3.1 asks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from hub.accounts.auth import bearer_token
from hub.errors import HubError

REALM = "toolhub"
_UNQUOTABLE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")
"""Characters RFC 6750 §3 does not allow in `error_description`: controls, non-ASCII, `"` and `\\`."""


def challenge(had_token: bool, description: str = "") -> str:
    """The value of `WWW-Authenticate` for a request that sent a key (`had_token`) or none."""
    params = [f'realm="{REALM}"']
    if had_token:
        params.append('error="invalid_token"')
        if text := _UNQUOTABLE.sub("", description).strip():
            params.append(f'error_description="{text}"')
    return "Bearer " + ", ".join(params)


def with_challenge(error: HubError, headers: Mapping[str, str]) -> HubError:
    """`error`, given a `WWW-Authenticate` header if it is a 401 (`headers` are the request's)."""
    if error.status_code == 401:
        error.headers.setdefault("WWW-Authenticate", challenge(bearer_token(headers) is not None, error.message))
    return error
