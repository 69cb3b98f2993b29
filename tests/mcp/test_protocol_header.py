"""An `MCP-Protocol-Version` header that names no version the hub serves is refused 400, saying which ones it does."""

from __future__ import annotations

import httpx2
import pytest

from tests.mcp.conftest import MASTER_KEY, hub_app, running

HEADERS = {"Accept": "application/json, text/event-stream", "Authorization": f"Bearer {MASTER_KEY}"}
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}


@pytest.mark.parametrize("session", [False, True], ids=["no-session", "in-a-session"])
def test_an_unsupported_protocol_version_header_is_refused_by_name(session: bool) -> None:
    with running(hub_app({})) as url:
        headers = {**HEADERS, "MCP-Protocol-Version": "1999-01-01"}
        if session:
            params = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
            opened = httpx2.post(f"{url}/mcp", headers=HEADERS, json={**PING, "method": "initialize", "params": params})
            headers["Mcp-Session-Id"] = opened.headers["mcp-session-id"]
        refused = httpx2.post(f"{url}/mcp", headers=headers, json=PING)
        modern = httpx2.post(f"{url}/mcp", headers={**HEADERS, "MCP-Protocol-Version": "2026-07-28"}, json=PING)
    error = refused.json()["error"]
    assert refused.status_code == 400 and error["code"] == -32022
    assert error["message"] == ("Unsupported protocol version '1999-01-01' (supported: 2024-11-05, 2025-03-26, "
                                "2025-06-18, 2025-11-25, 2026-07-28).")  # fmt: skip
    assert error["data"] == {"supported": ["2026-07-28"], "requested": "1999-01-01"}  # as the SDK's 2026 refusal
    assert "Unsupported protocol version" not in modern.text  # a served version takes its path as before
