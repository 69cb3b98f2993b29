"""The provider path's HTTP/1.1 client (`providers._wire`) against scripted upstreams on loopback sockets: body
framings, keep-alive reuse, connections the upstream ends, and bodies that break."""

from __future__ import annotations

import asyncio
import gzip
import zlib

import anyio
import pytest

from providers._wire import IncompleteResponse, MalformedResponse, Pool, Response, ServerDisconnected
from tests.providers.wire_support import Upstream, answer, chunked, fetch, keep_answering, read_request, upstream

pytestmark = pytest.mark.anyio


async def test_a_content_length_body_is_read_whole_and_the_connection_kept_for_the_next_request() -> None:
    record = Upstream("")
    async with upstream(keep_answering(answer(b'{"a": 1}'), record=record)) as served:
        pool = Pool()
        try:
            first = await fetch(pool, f"{served.url}/v1/x", b"{}")
            second = await fetch(pool, f"{served.url}/v1/y", b"{}")
        finally:
            await pool.aclose()
    assert (first, second, served.connections) == ((200, b'{"a": 1}'), (200, b'{"a": 1}'), 1)
    assert [r.head.split(b"\r\n")[0] for r in record.requests] == [b"POST /v1/x HTTP/1.1", b"POST /v1/y HTTP/1.1"]


async def test_the_request_names_its_host_and_length_and_adds_no_user_agent() -> None:
    record = Upstream("")
    async with upstream(keep_answering(answer(b"ok"), record=record)) as served:
        pool = Pool()
        try:
            await fetch(pool, f"{served.url}/p?q=1", b'{"x": 2}')
        finally:
            await pool.aclose()
    [request] = record.requests
    port = served.url.rsplit(":", 1)[1]
    assert request.head.startswith(b"POST /p?q=1 HTTP/1.1\r\n")
    assert (request.field("host"), request.field("content-length"), request.body) == (f"127.0.0.1:{port}", "8",
                                                                                      b'{"x": 2}')  # fmt: skip
    assert (request.field("user-agent"), request.field("accept-encoding")) == (None, "gzip, deflate")


async def test_a_header_value_with_a_line_break_is_refused_before_anything_is_sent() -> None:
    pool = Pool()
    with pytest.raises(ValueError):
        await pool.request("POST", "http://127.0.0.1:9/x", {"x-key": "a\r\nInjected: 1"}, b"")


async def test_a_chunked_body_is_read_whole_and_streamed_chunk_by_chunk() -> None:
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n")
        writer.write(b"5\r\nhello\r\n")
        await release.wait()
        writer.write(chunked(b" ", b"world"))
        await read_request(reader)
        writer.write(answer(b"again"))

    async with upstream(handler) as served:
        pool = Pool()
        try:
            response = await pool.request("POST", served.url, {}, b"", read=5)
            first = await response.read_chunk()
            release.set()
            rest = [await response.read_chunk(), await response.read_chunk()]
            response.close()
            again = await fetch(pool, served.url, b"")
        finally:
            await pool.aclose()
    assert (response.headers.get("Content-Type"), first, b"".join(rest)) == ("text/event-stream", b"hello", b" world")
    assert rest[-1] == b""  # the end
    assert (again, served.connections) == ((200, b"again"), 1)


async def test_a_body_delimited_by_the_connections_end_is_read_whole_on_a_connection_not_reused() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"until": ')
        await writer.drain()
        writer.write(b'"close"}')

    async with upstream(handler) as served:
        pool = Pool()
        try:
            answers = [await fetch(pool, served.url, b""), await fetch(pool, served.url, b"")]
        finally:
            await pool.aclose()
    assert (answers, served.connections) == ([(200, b'{"until": "close"}')] * 2, 2)


async def test_connection_close_from_the_upstream_is_honoured() -> None:
    async with upstream(keep_answering(answer(b"bye", "Connection: close"))) as served:
        pool = Pool()
        try:
            answers = [await fetch(pool, served.url, b""), await fetch(pool, served.url, b"")]
        finally:
            await pool.aclose()
    assert (answers, served.connections) == ([(200, b"bye")] * 2, 2)


def _idle_closed(pool: Pool) -> bool:
    return all(c.closed for h in pool._hosts.values() for c in h.idle)  # pyright: ignore[reportPrivateUsage]


async def test_a_connection_the_upstream_closed_while_idle_is_not_used_again() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"once"))  # keep-alive as far as the client knows; then the upstream's idle timeout
        await writer.drain()

    async with upstream(handler) as served:
        pool = Pool()
        try:
            first = await fetch(pool, served.url, b"")
            with anyio.fail_after(5):
                while not _idle_closed(pool):  # noqa: ASYNC110 - the pool has no event for a close it notices
                    await anyio.sleep(0.01)
            second = await fetch(pool, served.url, b"")
        finally:
            await pool.aclose()
    assert (first, second, served.connections) == ((200, b"once"), (200, b"once"), 2)


async def test_a_pooled_connection_dropped_as_the_request_arrives_is_told_apart_as_reused() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if served.connections == 1:
            await read_request(reader)
            writer.write(answer(b"{}"))
        await reader.readuntil(b"\r\n\r\n")  # dropped unanswered: the next request on the first connection (a
        # stale keep-alive), the first on any other

    async with upstream(handler) as served:
        pool = Pool()
        try:
            await fetch(pool, served.url, b"")
            with pytest.raises(ServerDisconnected) as dropped:
                await fetch(pool, served.url, b"")
            with pytest.raises(ServerDisconnected) as fresh:  # a new connection, dropped on its first request
                await fetch(pool, served.url, b"")
        finally:
            await pool.aclose()
    assert (dropped.value.reused, fresh.value.reused) == (True, False)


@pytest.mark.parametrize(
    "sent",
    [
        answer(b"0123456789")[:-4],  # a content-length body four bytes short
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(b"abcdef")[:-5],  # no last chunk
    ],
)
async def test_a_body_cut_midway_is_an_error_and_its_connection_is_not_reused(sent: bytes) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        if served.connections == 1:
            writer.write(sent)
        else:
            writer.write(answer(b"fine"))
            await read_request(reader)

    async with upstream(handler) as served:
        pool = Pool()
        try:
            with pytest.raises(IncompleteResponse):
                await fetch(pool, served.url, b"")
            after = await fetch(pool, served.url, b"")
        finally:
            await pool.aclose()
    assert (after, served.connections) == ((200, b"fine"), 2)


async def test_what_arrived_before_a_stream_broke_is_read_before_the_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\ndata\r\n")
        await writer.drain()
        writer.transport.abort()

    async with upstream(handler) as served:
        pool = Pool()
        try:
            response = await pool.request("POST", served.url, {}, b"", read=5)
            first = await response.read_chunk()
            with pytest.raises(IncompleteResponse):
                await response.read_chunk()
        finally:
            await pool.aclose()
    assert first == b"data"


async def test_bytes_that_are_not_http_are_a_malformed_response() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        await reader.read()

    async with upstream(handler) as served:
        pool = Pool()
        try:
            with pytest.raises(MalformedResponse):
                await fetch(pool, served.url, b"")
        finally:
            await pool.aclose()


@pytest.mark.parametrize(
    ("encoding", "encoded"),
    [
        ("gzip", gzip.compress(b'{"big": "' + b"x" * 5000 + b'"}')),
        ("deflate", zlib.compress(b'{"big": "' + b"x" * 5000 + b'"}')),
        ("deflate", zlib.compress(b'{"big": "' + b"x" * 5000 + b'"}')[2:-4]),  # raw deflate, as some servers send
    ],
)
async def test_a_compressed_body_is_inflated(encoding: str, encoded: bytes) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nTransfer-Encoding: chunked\r\n\r\n" % encoding.encode()
        )
        writer.write(chunked(encoded[:100], encoded[100:]))
        await reader.read()

    async with upstream(handler) as served:
        pool = Pool()
        try:
            status, body = await fetch(pool, served.url, b"")
        finally:
            await pool.aclose()
    assert (status, body) == (200, b'{"big": "' + b"x" * 5000 + b'"}')


async def test_an_interim_answer_is_skipped_and_repeated_fields_are_joined() -> None:
    sent = b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + answer(b"ok", "Vary: a", "vary: b")
    async with upstream(keep_answering(sent)) as served:
        pool = Pool()
        try:
            response = await pool.request("POST", served.url, {}, b"", total=5)
            body = await response.read()
        finally:
            await pool.aclose()
    assert (response.status, body) == (200, b"ok")
    assert (response.headers.get("VARY"), "link" in response.headers) == ("a, b", False)


@pytest.mark.parametrize("status", [b"000", b"099"])
async def test_a_status_below_100_is_a_malformed_response(status: bytes) -> None:
    async with upstream(keep_answering(answer(b"ok", status=f"{status.decode()} Odd"))) as served:
        pool = Pool()
        try:
            with pytest.raises(MalformedResponse):
                await pool.request("POST", served.url, {}, b"", total=2)
        finally:
            await pool.aclose()


async def test_a_connection_that_sent_more_than_its_answer_is_not_used_again() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"one") + (answer(b"unasked") if served.connections == 1 else b""))
        await read_request(reader)

    async with upstream(handler) as served:
        pool = Pool()
        try:
            answers = [await fetch(pool, served.url, b""), await fetch(pool, served.url, b"")]
        finally:
            await pool.aclose()
    assert (answers, served.connections) == ([(200, b"one")] * 2, 2)


@pytest.mark.parametrize("extra", [b"H", b"HTTP/1.1 200 OK\r\nX-A: "])
async def test_a_connection_that_sent_the_start_of_another_answer_is_not_used_again(extra: bytes) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if served.connections > 1:
            await keep_answering(answer(b"second"))(reader, writer)
        await read_request(reader)
        writer.write(answer(b"first") + extra)  # in one write with the answer: no callback names a header
        await read_request(reader)
        writer.write(answer(b"not this", status="429 Too Many Requests"))

    async with upstream(handler) as served:
        pool = Pool()
        try:
            answers = [await fetch(pool, served.url, b""), await fetch(pool, served.url, b"")]
        finally:
            await pool.aclose()
    assert (answers, served.connections) == ([(200, b"first"), (200, b"second")], 2)


async def test_a_body_larger_than_what_is_held_unread_arrives_whole() -> None:
    piece = b"x" * (1 << 16)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(*[piece] * 64))
        await writer.drain()

    async with upstream(handler) as served:
        pool = Pool()
        try:
            response = await pool.request("POST", served.url, {}, b"", read=5)
            with anyio.fail_after(5):
                while not _paused(response):  # noqa: ASYNC110 - no event for it: past 1 MiB unread, it stops reading
                    await anyio.sleep(0.01)
            size = 0
            with anyio.fail_after(10):
                while block := await response.read_chunk():
                    size += len(block)
        finally:
            await pool.aclose()
    assert size == 64 * len(piece)


async def test_a_large_body_read_whole_is_not_held_up_by_the_unread_limit() -> None:
    body = b"y" * (3 << 20)
    async with upstream(keep_answering(answer(body))) as served:
        pool = Pool()
        try:
            with anyio.fail_after(10):
                status, read = await fetch(pool, served.url, b"")
        finally:
            await pool.aclose()
    assert (status, len(read)) == (200, len(body))


def _paused(response: Response) -> bool:
    return response.conn is not None and response.conn.paused


async def test_each_set_cookie_is_kept_on_its_own_and_an_interim_answers_are_not() -> None:
    interim = b"HTTP/1.1 103 Early Hints\r\nSet-Cookie: early=1\r\n\r\n"
    sent = interim + answer(b"ok", "Set-Cookie: a=1; Expires=Sat, 12 Dec 2037 10:00:00 GMT", "Set-Cookie: b=2")
    async with upstream(keep_answering(sent)) as served:
        pool = Pool()
        try:
            response = await pool.request("POST", served.url, {}, b"", total=5)
            await response.read()
        finally:
            await pool.aclose()
    assert response.headers.cookies == ["a=1; Expires=Sat, 12 Dec 2037 10:00:00 GMT", "b=2"]
