"""A streamed request is recorded (journaled) before its `[DONE]` is sent, so a kill -9 right after cannot lose it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from hub.accounts.usage import UsageRecord
from hub.errors import ServiceUnavailable
from hub.gateway import sse
from hub.gateway.relay import CLIENT_GONE, Relay

pytestmark = pytest.mark.anyio

_USAGE = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}


def _chunk(text: str) -> dict[str, Any]:
    return {"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text}}]}


async def _chunks(fail: bool = False) -> AsyncIterator[dict[str, Any]]:
    yield _chunk("lo")
    if fail:
        raise ServiceUnavailable("upstream went away")
    yield {"id": "c1", "object": "chat.completion.chunk", "choices": [], "usage": dict(_USAGE)}


def _relay() -> tuple[Relay, UsageRecord, list[tuple[int, str | None, int]]]:
    record = UsageRecord("r1", None, "m", "m", "openai", 0, True, 0.0)
    calls: list[tuple[int, str | None, int]] = []
    return Relay({"messages": [{"role": "user", "content": "hi"}]}, record, count_usage=True), record, calls


async def test_the_record_is_finished_before_done_is_yielded() -> None:
    relay, record, calls = _relay()
    seen_at_done: list[list[tuple[int, str | None, int]]] = []
    body = relay.relay(_chunk("hel"), _chunks(), lambda s, e: calls.append((s, e, record.completion_tokens)))
    async for event in body:
        if event == sse.DONE:
            seen_at_done.append(list(calls))
    assert seen_at_done == [[(200, None, 3)]]  # with the upstream's usage, before [DONE] left
    assert calls == [(200, None, 3)]  # and only once


async def test_a_client_gone_at_done_does_not_record_twice() -> None:
    relay, record, calls = _relay()
    body = relay.relay(_chunk("hel"), _chunks(), lambda s, e: calls.append((s, e, record.completion_tokens)))
    async for event in body:  # pyright: ignore[reportGeneralTypeIssues]
        if event == sse.DONE:
            break
    await body.aclose()  # pyright: ignore[reportAttributeAccessIssue]
    assert calls == [(200, None, 3)]


async def test_an_error_mid_stream_is_recorded_once_with_its_status() -> None:
    relay, record, calls = _relay()
    body = relay.relay(_chunk("hel"), _chunks(fail=True), lambda s, e: calls.append((s, e, record.completion_tokens)))
    events = [event async for event in body]
    assert sse.DONE not in events and b"upstream went away" in events[-1]
    assert calls == [(503, "upstream went away", 0)]


async def _stalled() -> AsyncIterator[dict[str, Any]]:
    yield _chunk("lo")
    await anyio.sleep_forever()
    yield _chunk("never")


async def test_a_client_gone_mid_stream_is_recorded_as_such() -> None:
    relay, record, calls = _relay()
    body = relay.relay(_chunk("hel"), _stalled(), lambda s, e: calls.append((s, e, record.prompt_tokens)))
    received: list[bytes] = []
    with anyio.CancelScope() as scope:
        async for event in body:  # pyright: ignore[reportGeneralTypeIssues]
            received.append(event)
            if len(received) == 2:
                scope.cancel()  # the client leaves while the relay waits for the upstream's next chunk
    await body.aclose()  # pyright: ignore[reportAttributeAccessIssue]
    assert [(s, e) for s, e, _ in calls] == [(CLIENT_GONE, "client disconnected; usage estimated")]
    assert calls[0][2] > 0  # the estimate
