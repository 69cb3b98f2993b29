"""A pooled connection the upstream closed while idle (its keep-alive ran out first) is retried on a new one.

Servers built on uvicorn (vLLM's OpenAI server among them) close an idle connection after 5 s; the gateway's pool keeps
one longer. A request sent on such a connection meets `ServerDisconnected` before any answer, and must not become
a 502 for the client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import anyio
import pytest

from providers._http import HttpPool, post
from providers.base import Deployment, ProviderError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


def _unparsed(body: bytes) -> tuple[str, str | None, str | None, str | None]:
    return body.decode(), None, None, None


async def _answer_once_then_drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer a connection's first request as keep-alive; close it when the next one arrives, unanswered: the close
    of an idle timeout crossing the gateway's next request on the wire."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(OK)
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")
    writer.close()


async def _two_posts(deployment: Deployment) -> list[int]:
    server = await asyncio.start_server(_answer_once_then_drop, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = HttpPool()
    statuses: list[int] = []
    try:
        for _ in range(2):
            async with post(pool, deployment, f"http://127.0.0.1:{port}/v1/chat/completions", b"", {},
                            stream=False, parse_error=_unparsed) as response:  # fmt: skip
                statuses.append(response.status)
                await response.read()
    finally:
        await pool.aclose()
        server.close()
    return statuses


def test_a_stale_pooled_connection_is_retried_once_on_a_new_one() -> None:
    deployment = Deployment(provider="openai", model="m", api_base="http://127.0.0.1", max_retries=0)
    assert anyio.run(_two_posts, deployment) == [200, 200]


async def _always_drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.close()


def test_an_upstream_that_always_drops_still_fails_with_max_retries_zero() -> None:
    deployment = Deployment(provider="openai", model="m", api_base="http://127.0.0.1", max_retries=0)
    with pytest.raises(ProviderError) as raised:
        anyio.run(_post_to, _always_drop, deployment)
    assert raised.value.status_code == 502


class _WorksThenDrops:
    """Reads a whole request, works on it for a while, then drops the connection unanswered (a crash mid-generation):
    the request may have been billed, so it must not be sent again."""

    def __init__(self) -> None:
        self.received = 0

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
        )
        await reader.readexactly(length)
        self.received += 1
        await anyio.sleep(0.5)
        writer.transport.abort()


async def _post_to(handler: Handler, deployment: Deployment) -> None:
    """One POST to a server run by `handler` (it raises the `ProviderError` the post ends with)."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = HttpPool()
    try:
        async with post(pool, deployment, f"http://127.0.0.1:{port}/v1/chat/completions", b'{"model": "m"}', {},
                        stream=False, parse_error=_unparsed):  # fmt: skip
            pass
    finally:
        await pool.aclose()
        server.close()


def test_a_request_the_upstream_worked_on_before_dropping_it_is_not_sent_twice() -> None:
    handler = _WorksThenDrops()
    deployment = Deployment(provider="openai", model="m", api_base="http://127.0.0.1", max_retries=0)
    with pytest.raises(ProviderError) as raised:
        anyio.run(_post_to, handler, deployment)
    assert (raised.value.status_code, handler.received) == (502, 1)


class _AllIdleClosed:
    """Two connections, each answering one request and dropping the next unanswered: the upstream closed all its
    idle connections at once (a keep-alive timeout), so the retry must not pick another pooled one."""

    def __init__(self) -> None:
        self.connections = 0
        self.both = asyncio.Event()

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.connections == 2:
            self.both.set()
        await reader.readuntil(b"\r\n\r\n")
        await self.both.wait()  # both requests in flight, on two connections
        writer.write(OK)
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")
        writer.close()


async def _pool_of_two_then_one(handler: _AllIdleClosed, deployment: Deployment) -> list[int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/chat/completions"
    pool = HttpPool()
    statuses: list[int] = []

    async def one() -> None:
        async with post(pool, deployment, url, b"", {}, stream=False, parse_error=_unparsed) as response:
            statuses.append(response.status)
            await response.read()

    try:
        with anyio.fail_after(10):
            await asyncio.gather(one(), one())
            await one()
    finally:
        await pool.aclose()
        server.close()
    return statuses


def test_the_retry_after_a_stale_connection_takes_a_new_one_not_another_pooled_one() -> None:
    deployment = Deployment(provider="openai", model="m", api_base="http://127.0.0.1", max_retries=0)
    handler = _AllIdleClosed()
    statuses = anyio.run(_pool_of_two_then_one, handler, deployment)
    assert (statuses, handler.connections) == ([200, 200, 200], 3)
