"""How `KeepAliveStreamingResponse` (hub/loop/stream.py) accounts a streamed loop that ends other than by its last
event: a failure of the loop itself is a 500 naming it, as the non-streaming path records it, not a client that left."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import orjson
import pytest
from starlette.types import Message

from hub.loop.stream import KeepAliveStreamingResponse

pytestmark = pytest.mark.anyio


async def _served(items: AsyncIterator[Any]) -> tuple[list[tuple[int, str | None]], list[Message]]:
    """Serve a response of `items` to a client that stays; (what `done` was told, the messages sent)."""
    done: list[tuple[int, str | None]] = []
    sent: list[Message] = []
    response = KeepAliveStreamingResponse(items, orjson.dumps, lambda status, error: done.append((status, error)), 30)

    async def receive() -> Message:
        await anyio.sleep_forever()
        raise AssertionError

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(5), pytest.raises(ExceptionGroup):  # the failure, wrapped by the task groups
        await response({"type": "http"}, receive, send)
    return done, sent


async def test_a_loop_that_breaks_after_its_first_event_is_accounted_a_500_naming_the_failure() -> None:
    async def items() -> AsyncIterator[Any]:
        yield b": toolhub running\n\n"
        raise RuntimeError("the loop broke")

    done, sent = await _served(items())
    assert done == [(500, "RuntimeError: the loop broke")]
    assert sent[0] == {"type": "http.response.start", "status": 200, "headers": sent[0]["headers"]}


async def test_a_loop_that_breaks_before_any_event_is_accounted_a_500_too() -> None:
    async def items() -> AsyncIterator[Any]:
        raise RuntimeError("the loop broke at once")
        yield b""  # pragma: no cover (an async generator)

    done, _ = await _served(items())
    assert done == [(500, "RuntimeError: the loop broke at once")]
