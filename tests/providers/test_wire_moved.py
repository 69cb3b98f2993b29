"""An upstream whose name moved to a new address: `providers._wire` looks the name up again as soon as the cached
addresses give no connection (refused, silent until the connect timeout, or a TLS handshake that fails), instead of
failing for the rest of `DNS_TTL`."""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path

import anyio
import pytest

from providers._http import HttpPool, post
from providers._wire import ConnectFailed, Pool, UpstreamTimeout
from providers._wire.dial import Address, Resolver
from providers.base import Deployment, ProviderError
from tests.providers.wire_support import (
    answer,
    certificates,
    keep_answering,
    never_answer,
    unaccepting,
    upstream,
)


class _MovingResolver(Resolver):
    """A name whose address moves: each lookup answers the next of `ports` on 127.0.0.1, counted."""

    def __init__(self, *ports: int) -> None:
        super().__init__()
        self.ports = list(ports)
        self.lookups = 0

    async def getaddrinfo(self, loop: asyncio.AbstractEventLoop, host: str, port: int) -> list[Address]:
        self.lookups += 1
        return [Address(socket.AF_INET, socket.IPPROTO_TCP, ("127.0.0.1", self.ports.pop(0)))]


def _port(url: str) -> int:
    return int(url.rpartition(":")[2].partition("/")[0])


@pytest.mark.anyio
async def test_a_name_whose_addresses_refused_the_connection_is_looked_up_again() -> None:
    async with upstream(never_answer) as served:
        gone = _port(served.url)
    async with upstream(keep_answering(answer(b"moved"))) as served:
        pool = Pool()
        pool.resolver = resolver = _MovingResolver(gone, _port(served.url))
        try:
            with pytest.raises(ConnectFailed):
                await pool.request("POST", "http://upstream.example/", {}, b"", connect=5, total=5)
            response = await pool.request("POST", "http://upstream.example/", {}, b"", connect=5, total=5)
            body = await response.read()
        finally:
            await pool.aclose()
    assert (body, resolver.lookups) == (b"moved", 2)


@pytest.mark.anyio
async def test_a_name_whose_addressesnever_answered_within_the_connect_timeout_is_looked_up_again() -> None:
    async with unaccepting() as silent, upstream(keep_answering(answer(b"moved"))) as served:
        pool = Pool()
        pool.resolver = resolver = _MovingResolver(silent, _port(served.url))
        try:
            with pytest.raises(UpstreamTimeout) as raised:
                await pool.request("POST", "http://upstream.example/", {}, b"", connect=0.3, total=5)
            response = await pool.request("POST", "http://upstream.example/", {}, b"", connect=2, total=5)
            body = await response.read()
        finally:
            await pool.aclose()
    assert (raised.value.phase, body, resolver.lookups) == ("connect", b"moved", 2)


@pytest.mark.anyio
async def test_a_name_whose_address_took_the_connection_but_not_the_tls_handshake_is_looked_up_again(
    tmp_path: Path,
) -> None:
    certs = certificates(tmp_path, names=("upstream.example",))
    moved = upstream(keep_answering(answer(b"moved")), tls=certs.server)
    async with upstream(never_answer) as silent, moved as served:  # plain TCP: the ClientHello goes unanswered
        pool = Pool(ssl_context=ssl.create_default_context(cadata=certs.ca_pem))
        pool.resolver = resolver = _MovingResolver(_port(silent.url), _port(served.url))
        try:
            with pytest.raises(UpstreamTimeout):
                await pool.request("POST", "https://upstream.example/", {}, b"", connect=0.3, total=5)
            response = await pool.request("POST", "https://upstream.example/", {}, b"", connect=2, total=5)
            body = await response.read()
        finally:
            await pool.aclose()
    assert (silent.connections, body, resolver.lookups) == (1, b"moved", 2)


@pytest.mark.anyio
async def test_the_gateway_times_out_once_on_a_silent_old_address_then_calls_the_new_one() -> None:
    deployment = Deployment(provider="openai", model="m", api_base="http://upstream.example", connect_timeout=0.3)
    url = "http://upstream.example/v1/chat/completions"
    async with unaccepting() as silent, upstream(keep_answering(answer(b"{}"))) as served:
        pool = HttpPool()
        pool.upstream.resolver = resolver = _MovingResolver(silent, _port(served.url))
        try:
            with pytest.raises(ProviderError) as raised:
                async with post(pool, deployment, url, b"{}", {}, stream=False, parse_error=_unparsed):
                    pass
            with anyio.fail_after(5):
                async with post(pool, deployment, url, b"{}", {}, stream=False, parse_error=_unparsed) as response:
                    body = await response.read()
        finally:
            await pool.aclose()
    assert (raised.value.status_code, raised.value.code, body, resolver.lookups) == (504, "upstream_timeout", b"{}", 2)
    assert str(raised.value) == "no connection to openai within 0.3 s"  # the connect timeout, not the read one


@pytest.mark.anyio
async def test_a_connect_cut_short_by_the_whole_calls_timeout_names_the_seconds_that_ran_out() -> None:
    deployment = Deployment(provider="openai", model="m", api_base="http://upstream.example", timeout=0.5,
                            connect_timeout=10)  # fmt: skip
    async with unaccepting() as silent:
        pool = HttpPool()
        pool.upstream.resolver = _MovingResolver(silent, silent)
        try:
            with pytest.raises(ProviderError) as raised, anyio.fail_after(5):
                async with post(pool, deployment, "http://upstream.example/v1", b"{}", {}, stream=False,
                                parse_error=_unparsed):  # fmt: skip
                    pass
        finally:
            await pool.aclose()
    assert (raised.value.status_code, str(raised.value)) == (504, "no connection to openai within 0.5 s")


def _unparsed(body: bytes) -> tuple[str, str | None, str | None, str | None]:
    return body.decode(), None, None, None
