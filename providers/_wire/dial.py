"""Connecting to an origin: its addresses looked up once per `DNS_TTL`, then tried the Happy Eyeballs way.

uvloop's `create_connection` tries a name's addresses one after the other, each until the system gives up: where
IPv6 is configured but goes nowhere (many containers), every new connection would spend its whole connect timeout
on the first address. As aiohttp did (aiohappyeyeballs, RFC 8305), the next address is tried `ATTEMPT_DELAY` after
the previous one started, or as soon as it failed, families interleaved; the first to connect wins. Lookups are
cached as aiohttp's `ttl_dns_cache=300` did, so a burst of new connections makes one lookup, not one each.
"""

from __future__ import annotations

import asyncio
import socket
from typing import NamedTuple

DNS_TTL = 300.0
ATTEMPT_DELAY = 0.25


class Address(NamedTuple):
    family: int
    proto: int
    sockaddr: tuple[str, int] | tuple[str, int, int, int] | tuple[int, bytes]


class Resolver:
    """Addresses per (host, port), kept `DNS_TTL` seconds (failed lookups are not kept, nor addresses that gave no
    connection: `forget`). Requests that need a name looked up while a lookup of it is under way wait for that one
    (a burst of new connections makes one lookup)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int], tuple[float, list[Address]]] = {}
        self._lookups: dict[tuple[str, int], asyncio.Task[list[Address]]] = {}

    async def resolve(self, loop: asyncio.AbstractEventLoop, host: str, port: int) -> list[Address]:
        """Raises: OSError (socket.gaierror) when the name does not resolve."""
        key = (host, port)
        if (hit := self._cache.get(key)) is not None and hit[0] > loop.time():
            return hit[1]
        lookup = self._lookups.get(key)
        if lookup is None or lookup.get_loop() is not loop:
            lookup = self._lookups[key] = loop.create_task(self._lookup(loop, key))
            lookup.add_done_callback(lambda task: self._looked_up(key, task))
        return await asyncio.shield(lookup)  # one waiter cancelled (its timeout) does not cancel the others' lookup

    def forget(self, host: str, port: int, addresses: list[Address]) -> None:
        """Drop `addresses` kept for (host, port), if still those: connecting to them gave no connection (refused,
        no answer within the connect timeout, a failed TLS handshake), and the name may point elsewhere by now (an
        upstream moved, its old address refusing or dropping packets), so the next connect looks it up."""
        key = (host, port)
        if (hit := self._cache.get(key)) is not None and hit[1] is addresses:
            del self._cache[key]

    async def getaddrinfo(self, loop: asyncio.AbstractEventLoop, host: str, port: int) -> list[Address]:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return [Address(family, proto, addr) for family, _, proto, _, addr in infos]

    async def _lookup(self, loop: asyncio.AbstractEventLoop, key: tuple[str, int]) -> list[Address]:
        addresses = _interleaved(await self.getaddrinfo(loop, *key))
        self._cache[key] = (loop.time() + DNS_TTL, addresses)
        return addresses

    def _looked_up(self, key: tuple[str, int], task: asyncio.Task[list[Address]]) -> None:
        if self._lookups.get(key) is task:
            del self._lookups[key]
        if not task.cancelled():
            task.exception()  # retrieved: a failure whose waiters all left is not logged as never retrieved


def _interleaved(addresses: list[Address]) -> list[Address]:
    """The first family's first address, then the other family's first, and so on (RFC 8305 section 4)."""
    first = [a for a in addresses if a.family == addresses[0].family] if addresses else []
    other = [a for a in addresses if a.family != addresses[0].family] if addresses else []
    mixed = [a for pair in zip(first, other, strict=False) for a in pair]
    longer = first if len(first) > len(other) else other
    return mixed + longer[min(len(first), len(other)) :]


async def dial(loop: asyncio.AbstractEventLoop, addresses: list[Address]) -> socket.socket:
    """A socket connected to the first of `addresses` that answers.

    Raises:
        OSError: every address failed (the error of the only one, or one naming them all).
    """
    attempts: list[asyncio.Task[socket.socket]] = []
    errors: list[OSError] = []
    winner: socket.socket | None = None
    pending = iter(addresses)
    try:
        while winner is None:
            if (address := next(pending, None)) is not None:
                attempts.append(loop.create_task(_connect(loop, address)))
            running = [task for task in attempts if not task.done()]
            if not running:
                break
            timeout = ATTEMPT_DELAY if address is not None else None
            done, _ = await asyncio.wait(running, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if (error := task.exception()) is not None:
                    errors.append(error if isinstance(error, OSError) else OSError(str(error)))
                elif winner is None:
                    winner = task.result()
    finally:
        for task in attempts:
            if not task.done():
                task.cancel()  # its socket is closed as it ends
            elif not task.cancelled() and task.exception() is None and task.result() is not winner:
                task.result().close()  # connected too, a moment late
    if winner is not None:
        return winner
    if len(errors) == 1:
        raise errors[0]
    raise OSError(f"no address answered: {'; '.join(str(e) for e in errors) or 'the name has no address'}")


async def _connect(loop: asyncio.AbstractEventLoop, address: Address) -> socket.socket:
    sock = socket.socket(address.family, socket.SOCK_STREAM, address.proto)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await loop.sock_connect(sock, address.sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock
