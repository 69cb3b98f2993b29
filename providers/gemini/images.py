"""Fetching http(s) image and file URLs for Gemini, which the gateway gives inline (`inlineData`).

A file's URL (a chat `file` part's `file_data`, which a Messages `document` url source becomes) is fetched like an
image's, under the same per-request caps, rather than passed as `fileData.fileUri`: the providers notes (and the fake
Gemini) know `fileData` for Files API and YouTube URIs only; Google's newer external-URL input leaves out some models
and has Google fetch only public URLs, of a size and type the gateway cannot check. Fetched here it works on every
model and API base, honours `allow_private_image_urls`, and a URL that cannot be used is a 400 naming it before any
upstream call."""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import Collection
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

import anyio

from providers._addresses import NonPublicAddress, is_public_address
from providers._fanout import gather_limited
from providers._http import HttpPool
from providers.base import ProviderError
from providers.gemini.contents import InlineData

if TYPE_CHECKING:
    import aiohttp  # imported where used: a worker loads it for the first image URL it fetches (issue 17, RSS)

MAX_IMAGE_BYTES = 20 * 1024 * 1024
"""The most bytes one request's image and file URLs may fetch, all together (the provider's `max_image_bytes`).
Google has documented 20 MB for all the inline data of one request (base64 makes it a third larger on the wire;
newer models take more). It bounds the memory one request can make the gateway hold: the bytes, then their base64
form in the upstream body."""

MAX_IMAGE_URLS = 16
"""The most distinct image and file URLs one request may have fetched. Gemini takes thousands of images per request, but
within the 20 MB above that leaves over 1 MB per image; the cap bounds the connections and time one request costs."""

MAX_CONCURRENT_FETCHES = 4
"""Image and file URLs of one request fetched at the same time."""

MAX_REDIRECTS = 3

_DOCUMENTS = ("application/pdf", "text/plain", "text/markdown", "text/csv")
"""What a file URL may hold besides images: PDFs and plain text, which Gemini reads inline. Not HTML, which is what
a login wall or an expired signed URL answers with."""
_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF87a", "image/gif"),
          (b"GIF89a", "image/gif"), (b"%PDF-", "application/pdf"))  # fmt: skip


class ImageFetchError(ProviderError):
    """An image or file URL in the request could not be used (or there were too many); a 400 naming the URL or the
    limit, with code `invalid_image_url` or `invalid_file_url`. Its `param` is `messages` here; the provider names
    the message part holding `url` instead unless `request_wide` (the URL cap, or the byte limit reached only with
    the request's other URLs: no one part is at fault)."""

    def __init__(self, url: str | None, reason: str, what: str = "image", *, request_wide: bool = False) -> None:
        self.url, self.reason, self.what = url, reason, what
        self.request_wide = request_wide or url is None
        message = f"Could not use the {what} at {url}: {reason}" if url else reason
        super().__init__(message, status_code=400, provider="gemini", type="invalid_request_error",
                         code=f"invalid_{what}_url", param="messages")  # fmt: skip


class ByteBudget:
    """The bytes the images (and, `with_files`, files) of one request may still take, shared by its concurrent
    fetches. Its refusals say "image"; `fetch_image` names a file's as the file's."""

    def __init__(self, limit: int, *, with_files: bool = False) -> None:
        self.limit = limit
        self.used = 0
        self.what = "images and files" if with_files else "images"

    def check(self, url: str, declared: int | None) -> None:
        """Refuse a response whose declared length does not fit, before reading its body."""
        if declared is not None and self.used + declared > self.limit:
            alone = declared > self.limit
            over = "over" if alone else f"with the request's other {self.what} over"
            reason = f"it is {declared} bytes, {over} {self._limit()}"
            raise ImageFetchError(url, reason, request_wide=not alone)

    def take(self, url: str, size: int, image_bytes: int) -> None:
        """Count `size` more bytes read (`image_bytes` so far for this image), refusing once the total is over."""
        self.used += size
        if self.used > self.limit:
            alone = image_bytes > self.limit
            reason = "it is larger than" if alone else f"with the request's other {self.what} it is over"
            raise ImageFetchError(url, f"{reason} {self._limit()}", request_wide=not alone)

    def _limit(self) -> str:
        return f"the gateway's limit of {self.limit} bytes for the {self.what} of one request"


async def fetch_images(
    pool: HttpPool,
    urls: list[str],
    *,
    max_bytes: int,
    seconds: float,
    allow_private: bool = False,
    max_urls: int = MAX_IMAGE_URLS,
    files: Collection[str] = (),
) -> dict[str, InlineData]:
    """`{url: (mimeType, base64 data)}` for every URL, at most MAX_CONCURRENT_FETCHES at a time; `files` are the
    URLs that are files' (see `fetch_image`).

    `max_bytes` bounds all the URLs' bytes together; the first failure stops the fetches still running or waiting.

    Raises:
        ImageFetchError: more than `max_urls` URLs; a URL failed, timed out or was not an image (or, for a file, a
            PDF or text); the URLs together were larger than `max_bytes`.
    """
    if len(urls) > max_urls:
        what = "image and file URLs" if files else "image URLs"
        raise ImageFetchError(
            None, f"The request has {len(urls)} {what}; the gateway fetches at most {max_urls} per request for Gemini."
        )
    budget = ByteBudget(max_bytes, with_files=bool(files))

    async def one(url: str) -> InlineData:
        return await fetch_image(
            pool, url, max_bytes=max_bytes, seconds=seconds, allow_private=allow_private, budget=budget,
            file=url in files,
        )  # fmt: skip

    images = await gather_limited(one, urls, limit=MAX_CONCURRENT_FETCHES, stop_on=ImageFetchError)
    return dict(zip(urls, images, strict=True))


async def fetch_image(
    pool: HttpPool,
    url: str,
    *,
    max_bytes: int,
    seconds: float,
    allow_private: bool = False,
    budget: ByteBudget | None = None,
    file: bool = False,
) -> InlineData:
    """(mimeType, base64 data) of one image URL, counted against `budget` (by default `max_bytes` for it alone).
    `file`: a file's URL, which may also hold a PDF or text; errors name it a file (code `invalid_file_url`).

    Raises:
        ImageFetchError: the URL failed, timed out, was not an image (nor, for a file, a PDF or text) or did not fit.
    """
    try:
        return await _fetch(pool, url, seconds, allow_private, budget or ByteBudget(max_bytes), file)
    except ImageFetchError as exc:
        if not file or exc.what == "file":
            raise
        raise ImageFetchError(exc.url, exc.reason, "file", request_wide=exc.request_wide) from exc.__cause__


async def _fetch(
    pool: HttpPool, url: str, seconds: float, allow_private: bool, budget: ByteBudget, file: bool
) -> InlineData:
    import aiohttp

    try:
        with anyio.fail_after(seconds):
            async with await _follow(pool, url, allow_private) as response:
                if response.status >= 400:
                    raise ImageFetchError(url, f"HTTP {response.status}")
                budget.check(url, response.content_length)
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.content.iter_chunked(1 << 16):
                    size += len(chunk)
                    budget.take(url, len(chunk), size)
                    chunks.append(chunk)
                data = b"".join(chunks)
                mime = _mime(response.headers.get("content-type", ""), url, data, file)
    except TimeoutError as exc:
        raise ImageFetchError(url, f"no answer within {seconds:g} s") from exc
    except aiohttp.ClientError as exc:
        raise ImageFetchError(url, str(exc) or type(exc).__name__) from exc
    if not data:
        raise ImageFetchError(url, "the body is empty")
    return mime, base64.b64encode(data).decode()


async def _follow(pool: HttpPool, url: str, allow_private: bool) -> aiohttp.ClientResponse:
    """GET `url`, following up to MAX_REDIRECTS redirects, each hop to a public address only (unless allowed).

    Names are checked by the public session's resolver as it connects, on the very addresses it connects to (no
    second lookup for a rebinding DNS server to answer differently); IP literals are checked here.
    """
    import aiohttp

    session = pool.session() if allow_private else pool.public_session()
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        _check_hop(url, current, allow_private)
        try:
            response = await session.get(current, allow_redirects=False)
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, NonPublicAddress):
                raise _non_public(url, exc.os_error.host, exc.os_error.address) from exc
            raise
        location = response.headers.get("location")
        if response.status not in (301, 302, 303, 307, 308) or not location:
            return response
        response.release()
        current = urljoin(current, location)
    raise ImageFetchError(url, f"more than {MAX_REDIRECTS} redirects")


def _check_hop(url: str, hop: str, allow_private: bool) -> None:
    """Refuse a hop that is not http(s), or whose host is an IP literal that is not public."""
    parts = urlsplit(hop)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImageFetchError(url, "only http and https URLs can be fetched")
    if allow_private:
        return
    try:
        public = is_public_address(parts.hostname)
    except ValueError:
        return  # a name: the public session's resolver checks what it resolves to
    if not public:
        raise _non_public(url, parts.hostname, parts.hostname)


def _non_public(url: str, host: str, address: str) -> ImageFetchError:
    what = f"{host} is" if host == address else f"{host} resolves to"
    return ImageFetchError(
        url,
        f"{what} the non-public address {address}; the gateway does not fetch those unless the model's "
        "litellm_params.allow_private_image_urls is true",
    )


def _mime(content_type: str, url: str, data: bytes, file: bool = False) -> str:
    """The media type of fetched bytes: as served, else sniffed, else guessed from the URL's path."""
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime.startswith(("image/", "application/pdf", *(_DOCUMENTS if file else ()))):
        return mime
    for magic, sniffed in _MAGIC:
        if data.startswith(magic):
            return sniffed
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    guessed = mimetypes.guess_type(urlsplit(url).path)[0]
    if guessed and guessed.startswith(("image/", *(_DOCUMENTS if file else ()))):
        return guessed
    what = "neither a PDF, plain text nor an image" if file else "not an image"
    raise ImageFetchError(url, f"it is {what} (content type {mime or 'missing'})")
