"""Fetching http(s) image URLs for Gemini, which takes images inline only (or from its own Files API)."""

from __future__ import annotations

import base64
import mimetypes
from urllib.parse import urlsplit

import aiohttp
import anyio

from providers._http import HttpPool
from providers.base import ProviderError
from providers.gemini.contents import InlineData

MAX_IMAGE_BYTES = 20 * 1024 * 1024
"""Gemini's limit for a whole inline request; no single image can be larger."""

_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF87a", "image/gif"),
          (b"GIF89a", "image/gif"), (b"%PDF-", "application/pdf"))  # fmt: skip


class ImageFetchError(ProviderError):
    """An image URL in the request could not be used; a 400 naming the URL."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"Could not use the image at {url}: {reason}", status_code=400, provider="gemini",
                         type="invalid_request_error", code="invalid_image_url", param="messages")  # fmt: skip


async def fetch_images(pool: HttpPool, urls: list[str], *, max_bytes: int, seconds: float) -> dict[str, InlineData]:
    """`{url: (mimeType, base64 data)}` for every URL, fetched concurrently.

    Raises:
        ImageFetchError: a URL failed, timed out, was not an image, or was larger than `max_bytes`.
    """
    results: dict[str, InlineData] = {}
    errors: list[ImageFetchError] = []

    async def one(url: str) -> None:
        try:
            results[url] = await fetch_image(pool, url, max_bytes=max_bytes, seconds=seconds)
        except ImageFetchError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as group:
        for url in urls:
            group.start_soon(one, url)
    if errors:
        raise errors[0]
    return results


async def fetch_image(pool: HttpPool, url: str, *, max_bytes: int, seconds: float) -> InlineData:
    """(mimeType, base64 data) of one image URL. Raises ImageFetchError."""
    limit = f"the gateway's limit of {max_bytes} bytes"
    try:
        with anyio.fail_after(seconds):
            async with pool.session(url).get(url, allow_redirects=True) as response:
                if response.status >= 400:
                    raise ImageFetchError(url, f"HTTP {response.status}")
                if (response.content_length or 0) > max_bytes:
                    raise ImageFetchError(url, f"it is {response.content_length} bytes, over {limit}")
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.content.iter_chunked(1 << 16):
                    size += len(chunk)
                    if size > max_bytes:
                        raise ImageFetchError(url, f"it is larger than {limit}")
                    chunks.append(chunk)
                data = b"".join(chunks)
                mime = _mime(response.headers.get("content-type", ""), url, data)
    except TimeoutError as exc:
        raise ImageFetchError(url, f"no answer within {seconds:g} s") from exc
    except aiohttp.ClientError as exc:
        raise ImageFetchError(url, str(exc) or type(exc).__name__) from exc
    if not data:
        raise ImageFetchError(url, "the body is empty")
    return mime, base64.b64encode(data).decode()


def _mime(content_type: str, url: str, data: bytes) -> str:
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime.startswith(("image/", "application/pdf")):
        return mime
    for magic, sniffed in _MAGIC:
        if data.startswith(magic):
            return sniffed
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    guessed = mimetypes.guess_type(urlsplit(url).path)[0]
    if guessed and guessed.startswith("image/"):
        return guessed
    raise ImageFetchError(url, f"it is not an image (content type {mime or 'missing'})")
