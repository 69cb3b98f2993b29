"""A POST to an `/sse` session whose stream is closing: a JSON-RPC answer, no traceback, no reset connection."""

from __future__ import annotations

import logging
import uuid

import httpx2
import pytest
from mcp.server.sse import SseServerTransport
from mcp.shared._context_streams import create_context_streams
from mcp.shared.message import SessionMessage

from hub.mcp.guards import JsonRpcErrors, redact_session_ids

pytestmark = pytest.mark.anyio
CLIENT = {"name": "t", "version": "1"}
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": CLIENT}}  # fmt: skip


def closing_session(sse: SseServerTransport) -> uuid.UUID:
    """A session the transport still lists whose stream was closed: what a POST finds while the GET stream ends."""
    session = uuid.uuid4()
    writer, reader = create_context_streams[SessionMessage | Exception](1)
    reader.close()
    writer.close()
    sse._read_stream_writers[session] = writer  # pyright: ignore[reportPrivateUsage]
    return session


@pytest.mark.parametrize(("body", "status"), [(INITIALIZE, 202), ({"jsonrpc": "2.0", "id": 1, "method": 7}, 400)])
async def test_a_message_to_a_closing_sse_session_is_answered_without_a_traceback(
    body: object, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    redact_session_ids()  # as the hub runs: the SDK's traceback for an invalid body is one DEBUG line
    sse = SseServerTransport("/sse/messages/")
    session = closing_session(sse)
    app = JsonRpcErrors(sse.handle_post_message)
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
        with caplog.at_level(logging.INFO):
            response = await client.post(f"/sse/messages/?session_id={session.hex}", json=body)
    assert response.status_code == status  # answered before the message reached the session: it is dropped
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
