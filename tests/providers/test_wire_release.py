"""Answers released before their end (`Response.release()`): the rest is read and dropped to keep the connection
when it can serve again, against scripted upstreams on loopback sockets."""

from __future__ import annotations

import asyncio
import contextlib

import anyio
import anyio.lowlevel
import pytest

from providers._wire import Pool
from tests.providers.wire_support import answer, chunked, fetch, keep_answering, read_request, upstream

pytestmark = pytest.mark.anyio


async def test_a_released_answer_whose_end_comes_later_keeps_its_connection() -> None:
    released = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(b"data: [DONE]\n\n")[:-5])
        await released.wait()
        writer.write(b"0\r\n\r\n")  # the framing's end, after the reader has what it wanted
        await read_request(reader)
        writer.write(answer(b"next"))
        await reader.read()

    async with upstream(handler) as served:
        pool = Pool()
        try:
            response = await pool.request("POST", served.url, {}, b"", read=5)
            last = await response.read_chunk()
            response.release()
            released.set()
            with anyio.fail_after(5):
                while not _idle(pool):  # noqa: ASYNC110 - no event for it: the pool takes the connection back
                    await anyio.sleep(0.01)
            after = await fetch(pool, served.url, b"")
        finally:
            await pool.aclose()
    assert (last, after, served.connections) == (b"data: [DONE]\n\n", (200, b"next"), 1)


async def test_a_released_answer_that_does_not_end_soon_takes_its_connection_with_it() -> None:
    closed = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if served.connections > 1:
            await keep_answering(answer(b"fresh"))(reader, writer)
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\ndata\r\n")
        await reader.read()  # an answer that goes on (an upstream generating); its end is the client's close
        closed.set()

    async with upstream(handler) as served:
        pool = Pool()
        try:
            response = await pool.request("POST", served.url, {}, b"", read=5)
            await response.read_chunk()
            response.release()
            with anyio.fail_after(5):
                await closed.wait()
            after = await fetch(pool, served.url, b"")
        finally:
            await pool.aclose()
    assert (after, served.connections) == ((200, b"fresh"), 2)


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\n\r\n",  # a body that ends with the connection
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n",
    ],
)
async def test_a_released_answer_whose_connection_cannot_serve_again_closes_it_at_once(head: bytes) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(head + (b"4\r\ndata\r\n" if b"chunked" in head else b"data"))
        await reader.read()

    async with upstream(handler) as served:
        pool = Pool()
        try:
            response = await pool.request("POST", served.url, {}, b"", read=5)
            conn = response.conn
            await response.read_chunk()
            response.release()
            released = (response.conn, conn is not None and conn.closed)
        finally:
            await pool.aclose()
    assert released == (None, True)


def _idle(pool: Pool) -> int:
    return sum(len(h.idle) for h in pool._hosts.values())  # pyright: ignore[reportPrivateUsage]


async def test_closing_a_pool_in_a_cancelled_task_leaves_no_error_in_the_loop() -> None:
    loop = asyncio.get_running_loop()
    errors: list[dict[str, object]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: errors.append(context))
    try:
        async with upstream(keep_answering(answer(b"ok"))) as served:
            pool = Pool()
            assert await fetch(pool, served.url) == (200, b"ok")
            closing = asyncio.create_task(pool.aclose())
            await anyio.lowlevel.checkpoint()  # the pool has shut its connections and waits for a turn of the loop
            closing.cancel()  # as a cancel scope does to a client closed on the way out
            with contextlib.suppress(asyncio.CancelledError):
                await closing
            for _ in range(3):
                await anyio.lowlevel.checkpoint()
    finally:
        loop.set_exception_handler(previous)
    assert errors == []  # the loop ran a callback that set the result of the cancelled wait: InvalidStateError
