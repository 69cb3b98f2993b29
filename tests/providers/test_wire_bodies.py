"""Compressed answers through the provider path's HTTP/1.1 client (`providers._wire`): inflated in bounded steps,
whatever they inflate to, against scripted upstreams on loopback sockets."""

from __future__ import annotations

import asyncio
import gzip
import zlib

import anyio
import pytest

from providers._wire import BodyTooLarge, MalformedResponse, Pool, connection
from providers._wire.connection import HIGH_WATER
from providers._wire.inflate import Inflater
from tests.providers.wire_support import Handler, chunked, read_request, upstream

pytestmark = pytest.mark.anyio

BOMB_SIZE = 48 << 20
BOMB = gzip.compress(b"\0" * BOMB_SIZE, compresslevel=9)  # ~47 KB


def _serving(encoding: bytes, *chunks: bytes, end: bool = True) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nTransfer-Encoding: chunked\r\n\r\n" % encoding)
        writer.write(chunked(*chunks) if end else b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks))
        await reader.read()

    return handler


async def test_a_body_that_inflates_to_far_more_is_streamed_in_pieces_no_larger_than_what_is_held() -> None:
    async with upstream(_serving(b"gzip", BOMB)) as served:
        pool = Pool()
        try:
            response = await pool.request("POST", served.url, {}, b"", read=5)
            sizes: list[int] = []
            with anyio.fail_after(20):
                while block := await response.read_chunk():
                    sizes.append(len(block))
        finally:
            await pool.aclose()
    assert (sum(sizes), max(sizes) <= HIGH_WATER) == (BOMB_SIZE, True)


async def test_a_body_that_inflates_to_far_more_is_read_whole() -> None:
    async with upstream(_serving(b"gzip", BOMB[:1000], BOMB[1000:])) as served:
        pool = Pool()
        try:
            response = await pool.request("POST", served.url, {}, b"", read=5)
            first = await response.read_chunk()
            with anyio.fail_after(20):
                rest = await response.read()
        finally:
            await pool.aclose()
    assert len(first) + len(rest) == BOMB_SIZE


def test_inflating_stops_at_the_room_given_and_keeps_the_rest_for_later() -> None:
    inflater = Inflater.of("gzip", BOMB)
    assert inflater is not None
    first = inflater.inflate(BOMB, HIGH_WATER)
    assert (len(first), bool(inflater.pending)) == (HIGH_WATER, True)
    rest = inflater.inflate(b"", None)
    assert (len(first) + len(rest), inflater.pending, inflater.flush()) == (BOMB_SIZE, [], b"")


async def test_a_body_that_stops_inflating_after_its_first_pieces_is_a_malformed_response() -> None:
    broken = BOMB[:2000] + b"\xff" * 64 + BOMB[2064:]  # fine for more than what is held, then garbage
    async with upstream(_serving(b"gzip", broken, end=False)) as served:
        pool = Pool()
        try:
            response = await pool.request("POST", served.url, {}, b"", read=5)
            with anyio.fail_after(20), pytest.raises(MalformedResponse):
                while await response.read_chunk():
                    pass
        finally:
            await pool.aclose()


async def test_deflate_bodies_inflate_in_bounded_pieces_too() -> None:
    body = zlib.compress(b"\0" * BOMB_SIZE, 9)
    async with upstream(_serving(b"deflate", body)) as served:
        pool = Pool()
        try:
            response = await pool.request("POST", served.url, {}, b"", read=5)
            sizes: list[int] = []
            with anyio.fail_after(20):
                while block := await response.read_chunk():
                    sizes.append(len(block))
        finally:
            await pool.aclose()
    assert (sum(sizes), max(sizes) <= HIGH_WATER) == (BOMB_SIZE, True)


async def _read(handler: Handler) -> bytes:
    async with upstream(handler) as served:
        pool = Pool()
        try:
            response = await pool.request("POST", served.url, {}, b"", read=5)
            return await response.read()
        finally:
            await pool.aclose()


@pytest.mark.parametrize("past_border", [None, 0, 6])  # in one chunk; cut where a member starts, in its header
async def test_a_gzip_body_of_several_members_inflates_whole(past_border: int | None) -> None:
    members = gzip.compress(b"hello ") + gzip.compress(b"world") + gzip.compress(b"!")
    at = len(members) if past_border is None else len(gzip.compress(b"hello ")) + past_border
    assert await _read(_serving(b"gzip", members[:at], members[at:])) == b"hello world!"


async def test_a_gzip_body_of_too_many_members_at_once_is_a_malformed_response() -> None:
    with pytest.raises(MalformedResponse):
        await _read(_serving(b"gzip", gzip.compress(b"x") * 1026))


@pytest.mark.parametrize("encoding", [b"GZIP", b" Gzip "])
async def test_the_content_encoding_is_read_in_any_case(encoding: bytes) -> None:
    assert await _read(_serving(encoding, gzip.compress(b'{"a": 1}'))) == b'{"a": 1}'


async def test_a_zlib_wrapped_deflate_body_whose_first_chunk_is_one_byte_inflates() -> None:
    body = zlib.compress(b'{"a": 1}')
    assert await _read(_serving(b"deflate", body[:1], body[1:])) == b'{"a": 1}'


async def test_a_body_read_whole_that_inflates_past_the_bound_fails_instead_of_filling_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(connection, "MAX_WHOLE", 1 << 20)
    with pytest.raises(BodyTooLarge, match="larger than 1 MiB"), anyio.fail_after(20):
        await _read(_serving(b"gzip", BOMB))


async def test_a_plain_body_read_whole_past_the_bound_fails_and_takes_its_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(connection, "MAX_WHOLE", 100_000)
    with pytest.raises(BodyTooLarge), anyio.fail_after(20):
        await _read(_serving(b"identity", b"x" * 60_000, b"x" * 60_000))


async def test_a_body_read_whole_at_the_bound_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connection, "MAX_WHOLE", 100_000)
    assert len(await _read(_serving(b"gzip", gzip.compress(b"y" * 100_000)))) == 100_000
