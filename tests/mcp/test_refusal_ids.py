"""A refused `initialize` (403: the key may use no MCP server; 429: the key holds its most sessions) is answered with
the request's own id, as JSON-RPC asks of any answer to a request whose id could be read; null only when the body
is no JSON-RPC request (not JSON, no id) or longer than the hub reads for a refusal. The HTTP status stays. Real HTTP
against the served hub."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from hub.mcp.admission import REFUSAL_BODY_BYTES
from tests.mcp.conftest import running
from tests.mcp.test_session_limits import HELLO, headers, limited_app, open_session

PADDED = {**HELLO, "clientInfo": {"name": "x" * REFUSAL_BODY_BYTES, "version": "1"}}
BODIES: dict[str, tuple[bytes | dict[str, Any], int | str | None]] = {
    "a number id": ({"jsonrpc": "2.0", "id": 7, "method": "initialize", "params": HELLO}, 7),
    "a string id": ({"jsonrpc": "2.0", "id": "init-1", "method": "initialize", "params": HELLO}, "init-1"),
    "no JSON": (b"initialize, please", None),
    "no id": ({"jsonrpc": "2.0", "method": "notifications/initialized"}, None),
    "a longer body than is read": ({"jsonrpc": "2.0", "id": 8, "method": "initialize", "params": PADDED}, None),
}


def post(url: str, key: str, body: bytes | dict[str, Any]) -> httpx2.Response:
    if isinstance(body, bytes):
        return httpx2.post(url, headers={**headers(key), "Content-Type": "application/json"}, content=body)
    return httpx2.post(url, headers=headers(key), json=body)


def answer(response: httpx2.Response) -> tuple[int, Any, int]:
    """The status, the JSON-RPC id and error code of a refusal."""
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["jsonrpc"] == "2.0" and "mcp-session-id" not in response.headers
    return response.status_code, body["id"], body["error"]["code"]


@pytest.mark.parametrize(("body", "request_id"), BODIES.values(), ids=BODIES.keys())
def test_a_key_that_may_use_no_server_is_refused_with_its_requests_id(
    body: bytes | dict[str, Any], request_id: int | str | None
) -> None:
    with running(limited_app()) as base:
        refused = post(f"{base}/mcp", "sk-none", body)
    assert answer(refused) == (403, request_id, -32600)


@pytest.mark.parametrize(("body", "request_id"), BODIES.values(), ids=BODIES.keys())
def test_a_key_past_its_session_limit_is_refused_with_its_requests_id(
    body: bytes | dict[str, Any], request_id: int | str | None
) -> None:
    with running(limited_app(max_sessions_per_key=1)) as base:
        open_session(f"{base}/mcp", "sk-a")
        refused = post(f"{base}/mcp", "sk-a", body)
    status, answered_id, _ = answer(refused)
    assert (status, answered_id) == (429, request_id)
    assert refused.json()["error"]["data"] == {"limit": 1, "open": 1, "scope": "key"}
