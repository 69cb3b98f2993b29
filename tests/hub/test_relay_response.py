"""A relayed stream is accounted once even when Starlette never reads its body to the end, or never begins to: a
client gone before the first byte or mid-stream is a 499 record, and the key's budget hold is released with it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.requests import ClientDisconnect
from starlette.types import Message

from hub.accounts.usage import UsageRecord
from hub.gateway.relay import CLIENT_GONE, Relay, RelayResponse

pytestmark = pytest.mark.anyio
SCOPE: dict[str, Any] = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}}
"""ASGI 2.4: a `send` to a client that left raises OSError, which Starlette turns into ClientDisconnect."""


def chunk(text: str) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text}}]}


class Upstream:
    def __init__(self) -> None:
        self.closed = False

    async def chunks(self) -> AsyncIterator[dict[str, Any]]:
        try:
            for text in ("hel", "lo"):
                yield chunk(text)
        finally:
            self.closed = True


async def receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def sender(accepted: int) -> Any:
    """A `send` that takes `accepted` messages, then finds the client gone."""
    sent: list[Message] = []

    async def send(message: Message) -> None:
        if len(sent) >= accepted:
            raise OSError("connection reset")
        sent.append(message)

    return send


@pytest.mark.parametrize("accepted", [0, 1, 2])  # before the response start, before the first event, after it
async def test_a_client_gone_before_the_body_was_read_through_is_accounted_once(accepted: int) -> None:
    upstream, calls = Upstream(), list[tuple[int, str | None]]()
    record = UsageRecord("r", None, "m", "m", "openai", 0, True, 0.0)
    relay = Relay({"messages": [{"role": "user", "content": "hi"}]}, record, count_usage=True)
    chunks = upstream.chunks()
    first = await anext(chunks)  # as the gateway does before it answers
    response = RelayResponse(relay, first, chunks, lambda s, e: calls.append((s, e)), {})
    with pytest.raises(ClientDisconnect):
        await response(SCOPE, receive, sender(accepted))
    assert calls == [(CLIENT_GONE, "client disconnected; usage estimated")]
    assert upstream.closed and record.prompt_tokens > 0
