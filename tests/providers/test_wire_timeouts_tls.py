"""The provider path's HTTP/1.1 client (`providers._wire`): its three timeouts, the per-origin connection limit, and
TLS against a local server whose certificate a test CA signed."""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path

import anyio
import pytest

from providers._wire import ConnectFailed, Pool, UpstreamTimeout
from providers._wire.dial import Address, Resolver, _interleaved, dial  # pyright: ignore[reportPrivateUsage]
from tests.providers.wire_support import (
    answer,
    certificates,
    keep_answering,
    never_answer,
    read_request,
    unaccepting,
    upstream,
)


@pytest.mark.anyio
async def test_the_total_timeout_bounds_a_call_the_upstreamnever_answers() -> None:
    async with upstream(never_answer) as served:
        pool = Pool()
        try:
            with pytest.raises(UpstreamTimeout) as raised:
                await pool.request("POST", served.url, {}, b"", connect=5, total=0.2)
        finally:
            await pool.aclose()
    assert raised.value.phase == "total"


@pytest.mark.anyio
async def test_the_total_timeout_covers_the_body_too() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await reader.read()

    async with upstream(handler) as served:
        pool = Pool()
        try:
            response = await pool.request("POST", served.url, {}, b"", total=0.2)
            with pytest.raises(UpstreamTimeout) as raised:
                await response.read()
        finally:
            await pool.aclose()
    assert raised.value.phase == "total"


@pytest.mark.anyio
async def test_the_read_timeout_bounds_each_wait_of_a_stream() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\ndata\r\n")
        await reader.read()  # then nothing more

    async with upstream(handler) as served:
        pool = Pool()
        try:
            response = await pool.request("POST", served.url, {}, b"", read=0.2)
            first = await response.read_chunk()
            with pytest.raises(UpstreamTimeout) as raised:
                await response.read_chunk()
        finally:
            await pool.aclose()
    assert (first, raised.value.phase) == (b"data", "read")


@pytest.mark.anyio
async def test_the_read_timeout_bounds_the_wait_for_the_answer_to_start() -> None:
    async with upstream(never_answer) as served:
        pool = Pool()
        try:
            with pytest.raises(UpstreamTimeout) as raised:
                await pool.request("POST", served.url, {}, b"", read=0.2)
        finally:
            await pool.aclose()
    assert raised.value.phase == "read"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "pieces",
    [
        [b"HTTP/1.1 200 OK\r\n", *[b"X-A%d: b\r\n" % n for n in range(15)], answer(b"done")[17:]],  # a slow head
        [*[b"HTTP/1.1 103 Early Hints\r\n\r\n"] * 15, answer(b"done")],  # interim answers, none of them read
    ],
)
async def test_the_read_timeout_counts_from_the_last_bytes_even_those_that_woke_no_reader(pieces: list[bytes]) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        for piece in pieces:  # each well within the read timeout, all together well past it
            writer.write(piece)
            await writer.drain()
            await anyio.sleep(0.05)
        await reader.read()

    async with upstream(handler) as served:
        pool = Pool()
        try:
            response = await pool.request("POST", served.url, {}, b"", read=0.5)
            body = await response.read()
        finally:
            await pool.aclose()
    assert (response.status, body) == (200, b"done")


@pytest.mark.anyio
async def test_a_read_timeout_says_what_the_upstream_did_not_send() -> None:
    async with upstream(never_answer) as served:
        pool = Pool()
        try:
            with pytest.raises(UpstreamTimeout) as read:
                await pool.request("POST", served.url, {}, b"", read=0.1)
            with pytest.raises(UpstreamTimeout) as total:
                await pool.request("POST", served.url, {}, b"", total=0.1)
        finally:
            await pool.aclose()
    assert [str(read.value), str(total.value)] == [
        "the upstream sent no bytes within 0.1 s",
        "the call's total time ran out",
    ]


async def _waiting(pool: Pool, count: int) -> None:
    """Until `count` requests wait for a connection slot (bounded)."""
    with anyio.fail_after(5):
        while _waiters(pool) < count:  # noqa: ASYNC110 - the pool has no event for it
            await anyio.sleep(0.01)


def _waiters(pool: Pool) -> int:
    return sum(len(h.waiters) for h in pool._hosts.values())  # pyright: ignore[reportPrivateUsage]


@pytest.mark.anyio
async def test_a_request_waits_for_a_connection_slot_within_its_connect_timeout() -> None:
    received = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        received.set()
        await reader.read()

    async with upstream(handler) as served:
        pool = Pool(limit_per_host=1)
        try:
            busy = asyncio.ensure_future(pool.request("POST", served.url, {}, b"", total=10))
            await received.wait()
            with pytest.raises(UpstreamTimeout) as raised:
                await pool.request("POST", served.url, {}, b"", connect=0.2, total=10)
            busy.cancel()
            await asyncio.gather(busy, return_exceptions=True)
        finally:
            await pool.aclose()
    assert (raised.value.phase, served.connections) == ("connect", 1)


@pytest.mark.anyio
async def test_a_slot_freed_by_an_ended_answer_goes_to_the_request_waiting_for_it() -> None:
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await release.wait()
        writer.write(answer(b"first"))
        await read_request(reader)
        writer.write(answer(b"second"))
        await reader.read()

    async with upstream(handler) as served:
        pool = Pool(limit_per_host=1)
        try:
            first = asyncio.ensure_future(pool.request("POST", served.url, {}, b"", total=10))
            second = asyncio.ensure_future(pool.request("POST", served.url, {}, b"", connect=10, total=10))
            await _waiting(pool, 1)
            release.set()
            bodies = [await (await first).read(), await (await second).read()]
        finally:
            await pool.aclose()
    assert (bodies, served.connections) == ([b"first", b"second"], 1)


@pytest.mark.anyio
async def test_a_request_cancelled_while_waiting_for_a_slot_freed_at_that_moment_is_cancelled() -> None:
    async with upstream(keep_answering(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")) as served:
        pool = Pool(limit_per_host=1)
        try:
            holding = await pool.request("POST", served.url, {}, b"", read=10)  # a body that never ends
            waiting = asyncio.ensure_future(pool.request("POST", served.url, {}, b"", connect=10, read=10))
            await _waiting(pool, 1)
            waiting.cancel()  # (its connect timeout, or its client gone) and, in the same loop turn, a slot frees
            holding.close()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            again = await pool.request("POST", served.url, {}, b"", connect=5, read=10)  # the slot is free
            again.close()
        finally:
            await pool.aclose()
    assert (_waiters(pool), served.connections) == (0, 2)


@pytest.mark.anyio
async def test_the_connect_timeout_bounds_a_connection_nobody_accepts() -> None:
    async with unaccepting() as port:
        pool = Pool()
        with pytest.raises(UpstreamTimeout) as raised:
            await pool.request("POST", f"http://127.0.0.1:{port}/", {}, b"", connect=0.2, total=10)
    assert raised.value.phase == "connect"


@pytest.mark.anyio
async def test_an_address_that_does_not_answer_does_not_hold_up_the_next_one() -> None:
    loop = asyncio.get_running_loop()
    async with unaccepting() as silent, upstream(keep_answering(answer(b""))) as served:
        port = int(served.url.rsplit(":", 1)[1])
        addresses = [Address(socket.AF_INET, 0, ("127.0.0.1", silent)), Address(socket.AF_INET, 0, ("127.0.0.1", port))]
        with anyio.fail_after(5):  # one at a time, the first would wait for the kernel's timeout (minutes)
            sock = await dial(loop, addresses)
        peer = sock.getpeername()
        sock.close()
    assert peer == ("127.0.0.1", port)


class _HeldResolver(Resolver):
    """Lookups that wait for the test to answer them, counted."""

    def __init__(self) -> None:
        super().__init__()
        self.lookups = 0
        self.answer = asyncio.Event()

    async def getaddrinfo(self, loop: asyncio.AbstractEventLoop, host: str, port: int) -> list[Address]:
        self.lookups += 1
        await self.answer.wait()
        return [Address(socket.AF_INET, socket.IPPROTO_TCP, ("192.0.2.1", port))]


@pytest.mark.anyio
async def test_requests_that_need_a_name_being_looked_up_wait_for_that_one_lookup() -> None:
    resolver, loop = _HeldResolver(), asyncio.get_running_loop()
    waiting = [asyncio.ensure_future(resolver.resolve(loop, "upstream.example", 443)) for _ in range(20)]
    with anyio.fail_after(5):
        await anyio.wait_all_tasks_blocked()
        waiting[0].cancel()  # one that leaves (its connect timeout) ends the lookup for nobody else
        resolver.answer.set()
        answers = await asyncio.gather(*waiting[1:])
        again = await resolver.resolve(loop, "upstream.example", 443)
    assert (resolver.lookups, waiting[0].cancelled()) == (1, True)
    assert answers == [again] * 19 == [[Address(socket.AF_INET, socket.IPPROTO_TCP, ("192.0.2.1", 443))]] * 19


def test_addresses_are_tried_with_their_families_interleaved() -> None:
    v4 = [Address(socket.AF_INET, 0, (f"192.0.2.{n}", 1)) for n in (1, 2, 3)]
    v6 = [Address(socket.AF_INET6, 0, (f"2001:db8::{n}", 1, 0, 0)) for n in (1, 2)]
    assert _interleaved([*v6, *v4]) == [v6[0], v4[0], v6[1], v4[1], v4[2]]
    assert _interleaved(v4) == v4


@pytest.mark.anyio
async def test_connecting_where_nothing_listens_fails_as_a_connect_failure() -> None:
    async with upstream(never_answer) as served:
        url = served.url
    pool = Pool()
    with pytest.raises(ConnectFailed):
        await pool.request("POST", url, {}, b"", connect=5, total=5)


@pytest.mark.anyio
async def test_tls_verifies_the_upstream_against_the_ca_given(tmp_path: Path) -> None:
    certs = certificates(tmp_path)
    async with upstream(keep_answering(answer(b"secret")), tls=certs.server) as served:
        pool = Pool(ssl_context=ssl.create_default_context(cadata=certs.ca_pem))
        try:
            response = await pool.request("POST", served.url, {}, b"{}", connect=5, total=5)
            body = await response.read()
            again = await pool.request("POST", served.url, {}, b"{}", connect=5, total=5)
            await again.read()
        finally:
            await pool.aclose()
    assert (served.url.startswith("https://"), response.status, body, served.connections) == (True, 200, b"secret", 1)


@pytest.mark.anyio
async def test_tls_refuses_a_certificate_no_trusted_ca_signed(tmp_path: Path) -> None:
    certs = certificates(tmp_path)
    async with upstream(keep_answering(answer(b"secret")), tls=certs.server) as served:
        pool = Pool()  # the system's CAs, which never signed the test CA
        with pytest.raises(ConnectFailed) as raised:
            await pool.request("POST", served.url, {}, b"{}", connect=5, total=5)
    assert isinstance(raised.value.__cause__, ssl.SSLCertVerificationError)


@pytest.mark.anyio
async def test_tls_refuses_a_certificate_for_another_host(tmp_path: Path) -> None:
    certs = certificates(tmp_path, names=("upstream.example",))
    async with upstream(keep_answering(answer(b"secret")), tls=certs.server) as served:
        pool = Pool(ssl_context=ssl.create_default_context(cadata=certs.ca_pem))
        with pytest.raises(ConnectFailed) as raised:
            await pool.request("POST", served.url, {}, b"{}", connect=5, total=5)
    assert isinstance(raised.value.__cause__, ssl.SSLCertVerificationError)
