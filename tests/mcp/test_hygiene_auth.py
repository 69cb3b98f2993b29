"""401s of the MCP endpoints carry `WWW-Authenticate: Bearer` (RFC 6750 §3; issue 15 item 7)."""

from __future__ import annotations

import httpx2

from hub.errors import AuthenticationError, PermissionDenied
from hub.mcp.challenge import challenge, with_challenge
from tests.mcp.conftest import hub_app, running, tool_server

HELLO = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": HELLO}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


def test_without_a_key_the_challenge_names_only_the_realm() -> None:
    error = with_challenge(AuthenticationError("Missing API key."), {})
    assert error.headers["WWW-Authenticate"] == 'Bearer realm="toolhub"'


def test_a_refused_key_is_an_invalid_token_with_the_reason() -> None:
    error = with_challenge(AuthenticationError("This key expired at 2026-01-01."), {"authorization": "Bearer sk-x"})
    assert error.headers["WWW-Authenticate"] == (
        'Bearer realm="toolhub", error="invalid_token", error_description="This key expired at 2026-01-01."'
    )


def test_the_description_keeps_only_what_a_quoted_string_may_hold() -> None:
    assert (
        challenge(True, 'Key "k\\1" \u00e9\n')
        == 'Bearer realm="toolhub", error="invalid_token", error_description="Key k1"'
    )


def test_other_errors_get_no_challenge() -> None:
    error = with_challenge(PermissionDenied("This key may not use the MCP server 'x'."), {})
    assert "WWW-Authenticate" not in error.headers


def test_every_mcp_endpoint_challenges_a_missing_or_wrong_key() -> None:
    with running(hub_app({"tool": tool_server()})) as url:
        seen: dict[tuple[str, str], tuple[int, str | None]] = {}
        for path in ("/mcp", "/mcp/tool", "/sse"):
            for label, headers in (("none", {}), ("wrong", {"Authorization": "Bearer sk-wrong"})):
                if path == "/sse":
                    response = httpx2.get(url + path, headers=headers)
                else:
                    response = httpx2.post(url + path, headers={**MCP_HEADERS, **headers}, json=INITIALIZE)
                seen[path, label] = (response.status_code, response.headers.get("www-authenticate"))
    invalid = 'Bearer realm="toolhub", error="invalid_token", error_description="Invalid API key."'
    for path in ("/mcp", "/mcp/tool", "/sse"):
        assert seen[path, "none"] == (401, 'Bearer realm="toolhub"')
        assert seen[path, "wrong"] == (401, invalid)
