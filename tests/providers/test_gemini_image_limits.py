"""One request's Gemini image URLs are bounded together: how many, how many bytes in all, how many at a time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anyio
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from providers._http import HttpPool
from providers.gemini.images import (
    MAX_CONCURRENT_FETCHES,
    MAX_IMAGE_BYTES,
    MAX_IMAGE_URLS,
    ImageFetchError,
    fetch_images,
)
from tests.support.servers import serve_app

GIF = b"GIF89a"
BIG = GIF + bytes(16 * 1024 * 1024 - len(GIF))  # the QA report's 16 MB image


class Counts:
    """What the image server saw: request paths, and the most it was answering at once.

    A request the client gave up on may reach the server after the next test has begun: tests filter by path.
    """

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0


COUNTS = Counts()


async def sized(request: Request) -> Response:
    COUNTS.hits.append(request.url.path)
    size = int(request.query_params.get("size", "100"))
    return Response(GIF + bytes(size - len(GIF)), media_type="image/gif")


async def streamed(request: Request) -> Response:
    COUNTS.hits.append(request.url.path)

    async def body() -> AsyncIterator[bytes]:
        yield GIF
        for _ in range(300):  # 300 KiB without a content-length: only counting the bytes can stop it
            yield bytes(1024)

    return StreamingResponse(body(), media_type="image/gif")


async def big(request: Request) -> Response:
    COUNTS.hits.append(request.url.path)
    return Response(BIG, media_type="image/gif")


async def slow(request: Request) -> Response:
    COUNTS.hits.append(request.url.path)
    COUNTS.in_flight += 1
    COUNTS.max_in_flight = max(COUNTS.max_in_flight, COUNTS.in_flight)
    await anyio.sleep(0.2)  # a slow image host: fetches started together overlap here
    COUNTS.in_flight -= 1
    return Response(GIF, media_type="image/gif")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    routes = [Route("/img/{n}", sized), Route("/cap/{n}", sized), Route("/streamed/{n}", streamed),
              Route("/big/{n}", big), Route("/slow/{n}", slow)]  # fmt: skip
    with serve_app(Starlette(routes=routes), graceful_timeout=1) as url:
        yield url


@pytest.fixture
async def pool() -> AsyncIterator[HttpPool]:
    COUNTS.__init__()
    pool = HttpPool()
    try:
        yield pool
    finally:
        await pool.aclose()


def assert_openai_400(error: ImageFetchError) -> None:
    assert (error.status_code, error.type, error.code, error.param) == (
        400,
        "invalid_request_error",
        "invalid_image_url",
        "messages",
    )


@pytest.mark.anyio
async def test_more_image_urls_than_the_cap_are_refused_before_any_is_fetched(server: str, pool: HttpPool) -> None:
    urls = [f"{server}/cap/{n}" for n in range(MAX_IMAGE_URLS + 1)]
    with pytest.raises(ImageFetchError) as exc_info:
        await fetch_images(pool, urls, max_bytes=MAX_IMAGE_BYTES, seconds=10, allow_private=True)
    assert_openai_400(exc_info.value)
    assert exc_info.value.message == (
        f"The request has {MAX_IMAGE_URLS + 1} image URLs; the gateway fetches at most {MAX_IMAGE_URLS} per request "
        "for Gemini."
    )
    assert [hit for hit in COUNTS.hits if hit.startswith("/cap/")] == []
    images = await fetch_images(pool, urls[:-1], max_bytes=MAX_IMAGE_BYTES, seconds=10, allow_private=True)
    assert len(images) == MAX_IMAGE_URLS


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["img/{n}?size=300000", "streamed/{n}"])
async def test_the_images_of_one_request_share_one_byte_limit(server: str, pool: HttpPool, path: str) -> None:
    urls = [f"{server}/{path.format(n=n)}" for n in range(12)]  # each ~300 KB, under the limit alone
    with pytest.raises(ImageFetchError) as exc_info:
        await fetch_images(pool, urls, max_bytes=1_000_000, seconds=10, allow_private=True)
    assert_openai_400(exc_info.value)
    assert (
        "with the request's other images" in exc_info.value.message
        and "over the gateway's limit of 1000000 bytes for the images of one request" in exc_info.value.message
    )
    prefix = "/" + path.split("/")[0] + "/"
    assert len([hit for hit in COUNTS.hits if hit.startswith(prefix)]) < len(urls)  # they stop at the first refusal


@pytest.mark.anyio
async def test_eight_16_mb_images_stop_at_the_20_mb_limit_after_at_most_four_fetches(
    server: str, pool: HttpPool
) -> None:
    urls = [f"{server}/big/{n}" for n in range(8)]  # the QA report's request: 705 bytes that held 824 MB
    with pytest.raises(ImageFetchError) as exc_info:
        await fetch_images(pool, urls, max_bytes=MAX_IMAGE_BYTES, seconds=30, allow_private=True)
    assert f"limit of {MAX_IMAGE_BYTES} bytes for the images of one request" in exc_info.value.message
    assert len([hit for hit in COUNTS.hits if hit.startswith("/big/")]) <= MAX_CONCURRENT_FETCHES


@pytest.mark.anyio
async def test_image_urls_are_fetched_a_few_at_a_time(server: str, pool: HttpPool) -> None:
    urls = [f"{server}/slow/{n}" for n in range(2 * MAX_CONCURRENT_FETCHES)]
    images = await fetch_images(pool, urls, max_bytes=MAX_IMAGE_BYTES, seconds=10, allow_private=True)
    assert len(images) == len(urls) == len([hit for hit in COUNTS.hits if hit.startswith("/slow/")])
    assert 1 <= COUNTS.max_in_flight <= MAX_CONCURRENT_FETCHES


@pytest.mark.anyio
async def test_a_single_image_over_the_limit_is_named_alone(server: str, pool: HttpPool) -> None:
    with pytest.raises(ImageFetchError) as exc_info:
        await fetch_images(pool, [f"{server}/img/1?size=5000"], max_bytes=4000, seconds=10, allow_private=True)
    assert exc_info.value.message == (
        f"Could not use the image at {server}/img/1?size=5000: it is 5000 bytes, over the gateway's limit of 4000 "
        "bytes for the images of one request"
    )
