"""Fetching http(s) images for Gemini through the shared HttpPool, against a loopback server."""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import AsyncIterator, Iterator

import anyio
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from providers._addresses import is_public_address
from providers._http import HttpPool
from providers._resolver import PublicOnlyResolver
from providers.gemini.images import ImageFetchError, fetch_image, fetch_images
from tests.support.servers import serve_app

GIF = b"GIF89a" + b"\0" * 20
RELEASE = threading.Event()


async def chunked(request: Request) -> Response:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(64):  # 64 KiB without a content-length: only counting the bytes can stop it
            yield b"\0" * 1024

    return StreamingResponse(body(), media_type="image/png")


async def stalled(request: Request) -> Response:
    await anyio.to_thread.run_sync(RELEASE.wait, 10)
    return Response(GIF, media_type="image/gif")


async def sniffed(request: Request) -> Response:
    return Response(GIF, media_type="binary/octet-stream")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    app = Starlette(routes=[Route("/chunked", chunked), Route("/stalled", stalled), Route("/x", sniffed)])
    with serve_app(app, graceful_timeout=1) as url:
        yield url
        RELEASE.set()


@pytest.mark.anyio
async def test_a_streamed_body_over_the_cap_is_refused_without_reading_it_all(server: str) -> None:
    pool = HttpPool()
    try:
        with pytest.raises(ImageFetchError) as exc_info:
            await fetch_image(pool, f"{server}/chunked", max_bytes=10_000, seconds=10, allow_private=True)
        assert exc_info.value.status_code == 400
        assert f"{server}/chunked" in exc_info.value.message and "10000 bytes" in exc_info.value.message
        mime, data = await fetch_image(pool, f"{server}/chunked", max_bytes=1 << 20, seconds=10, allow_private=True)
        assert (mime, len(base64.b64decode(data))) == ("image/png", 64 * 1024)
    finally:
        await pool.aclose()


@pytest.mark.anyio
async def test_the_media_type_is_sniffed_when_the_server_does_not_say_and_a_stall_times_out(server: str) -> None:
    pool = HttpPool()
    try:
        images = await fetch_images(pool, [f"{server}/x"], max_bytes=1000, seconds=10, allow_private=True)
        assert images == {f"{server}/x": ("image/gif", base64.b64encode(GIF).decode())}
        with pytest.raises(ImageFetchError) as exc_info:
            await fetch_images(
                pool, [f"{server}/x", f"{server}/stalled"], max_bytes=1000, seconds=0.2, allow_private=True
            )
        assert f"{server}/stalled" in exc_info.value.message and "no answer within 0.2 s" in exc_info.value.message
    finally:
        RELEASE.set()
        await pool.aclose()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://localhost:9/cat.png", "non-public address"),
        ("http://[::1]:9/cat.png", "non-public address"),
        ("http://10.1.2.3/cat.png", "non-public address"),
        ("http://169.254.169.254/latest/meta-data", "non-public address"),
        ("http://[64:ff9b::7f00:1]:9/cat.png", "non-public address"),  # NAT64 of 127.0.0.1
        ("http://[2002:7f00:1::1]:9/cat.png", "non-public address"),  # 6to4 of 127.0.0.1
        ("http://[::ffff:7f00:1]:9/cat.png", "non-public address"),
        ("http://127.1:9/cat.png", "canonical IPv4"),
        ("ftp://example.com/cat.png", "only http and https"),
    ],
)
@pytest.mark.anyio
async def test_private_and_non_http_urls_are_refused_before_any_connection(url: str, reason: str) -> None:
    pool = HttpPool()
    try:
        with pytest.raises(ImageFetchError) as exc_info:
            await fetch_image(pool, url, max_bytes=1000, seconds=5)
    finally:
        await pool.aclose()
    assert reason in exc_info.value.message


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "2606:4700:4700::1111", "64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8",
     "2001:0:4136:e378:8000:63bf:f7f7:f7f7"],  # Teredo: server 65.54.227.120, client 8.8.8.8
)  # fmt: skip
def test_public_addresses_and_forms_embedding_one_are_public(address: str) -> None:
    assert is_public_address(address)


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.0.0.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "::", "::1", "fe80::1%eth0",
     "fc00::1", "fec0::1", "ff02::1",
     "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe",  # NAT64 of 127.0.0.1 and of the metadata address
     "64:ff9b:1::808:808",  # local-use NAT64: translated inside the operator's network
     "2002:7f00:1::1", "2002:a00:1::1",  # 6to4 of 127.0.0.1 and 10.0.0.1
     "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo whose client is 127.0.0.1
     "::ffff:127.0.0.1", "::127.0.0.1", "::ffff:0:7f00:1", "::ffff:10.0.0.1"],
)  # fmt: skip
def test_private_addresses_and_forms_embedding_one_are_not_public(address: str) -> None:
    assert not is_public_address(address)


class RebindingResolver(AbstractResolver):
    """A DNS server that answers 127.0.0.1 once and 127.0.0.2 ever after (the rebinding attack, on loopback)."""

    def __init__(self) -> None:
        self.answers = ["127.0.0.1"]

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        address = self.answers[-1]
        self.answers.append("127.0.0.2")
        return [{"hostname": host, "host": address, "port": port, "family": socket.AF_INET, "proto": 0, "flags": 0}]

    async def close(self) -> None:
        pass


@pytest.mark.anyio
async def test_the_connection_goes_to_the_address_that_was_checked(server: str) -> None:
    port = int(server.rsplit(":", 1)[1])
    attacker = socket.socket()  # 127.0.0.2 stands for the gateway's own network
    attacker.bind(("127.0.0.2", port))
    attacker.listen()
    attacker.setblocking(False)
    dns = RebindingResolver()
    # Only 127.0.0.1 counts as "public" here, so that the test never connects anywhere but loopback.
    pool = HttpPool(public_resolver=PublicOnlyResolver(dns, allowed=lambda address: address == "127.0.0.1"))
    try:
        for _ in range(2):
            image = await fetch_image(pool, f"http://images.test:{port}/x", max_bytes=1000, seconds=5)
            assert image == ("image/gif", base64.b64encode(GIF).decode())
    finally:
        await pool.aclose()
    with pytest.raises(BlockingIOError):
        attacker.accept()  # nothing ever connected to the second answer
    attacker.close()
    assert dns.answers == ["127.0.0.1", "127.0.0.2"]  # one lookup, checked and connected to


@pytest.mark.anyio
async def test_a_name_that_resolves_to_a_refused_address_is_a_400_naming_it(server: str) -> None:
    port = int(server.rsplit(":", 1)[1])
    dns = RebindingResolver()
    dns.answers = ["127.0.0.2"]
    pool = HttpPool(public_resolver=PublicOnlyResolver(dns, allowed=lambda address: address == "127.0.0.1"))
    try:
        with pytest.raises(ImageFetchError) as exc_info:
            await fetch_image(pool, f"http://images.test:{port}/x", max_bytes=1000, seconds=5)
    finally:
        await pool.aclose()
    assert "images.test resolves to the non-public address 127.0.0.2" in exc_info.value.message
