"""Fetching http(s) images for Gemini through the shared HttpPool, against a loopback server."""

from __future__ import annotations

import base64
import threading
from collections.abc import AsyncIterator, Iterator

import anyio
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from providers._http import HttpPool
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
