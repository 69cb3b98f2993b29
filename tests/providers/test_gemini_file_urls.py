"""A file given by URL (a chat `file` part's `file_data`, a Messages `document` url source) reaches Gemini as the
bytes the gateway fetched, never as the URL posing as base64; a URL it cannot fetch is a 400 before any call."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from providers._http import HttpPool
from providers.base import Deployment, ProviderError
from providers.gemini.contents import http_file_urls, http_image_urls
from providers.gemini.images import ImageFetchError, fetch_images
from providers.gemini.request import build_request
from providers.gemini.signatures import SignatureStore
from tests.fakes.gemini_rules import GeminiRules
from tests.support.servers import serve_app

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PDF_B64 = base64.b64encode(PDF).decode()
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
URL = "https://files.example/report.pdf"


def file_part(data: str, filename: str = "report.pdf") -> dict[str, Any]:
    return {"type": "file", "file": {"file_data": data, "filename": filename}}


def user(*parts: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "text", "text": "Summarize."}, *parts]}]


def build(messages: list[dict[str, Any]], fetched: dict[str, tuple[str, str]] | None = None) -> dict[str, Any]:
    deployment = Deployment(provider="gemini", model="gemini-2.5-flash", api_base="http://127.0.0.1:1", api_key="k")
    body = {"messages": messages}
    return build_request(body, deployment, lookup=SignatureStore().lookup, images=fetched or {}).body


def test_a_files_http_url_is_collected_for_fetching_once_and_apart_from_image_urls() -> None:
    image = {"type": "image_url", "image_url": {"url": "https://files.example/cat.png"}}
    messages = [*user(file_part(URL), file_part(f"data:application/pdf;base64,{PDF_B64}"), file_part(PDF_B64),
                      file_part(URL), image, file_part("http://files.example/notes.txt"))]  # fmt: skip
    assert http_file_urls(messages) == [URL, "http://files.example/notes.txt"]
    assert http_image_urls(messages) == ["https://files.example/cat.png"]


def test_a_files_http_url_becomes_the_fetched_bytes_inline() -> None:
    sent = build(user(file_part(URL)), {URL: ("application/pdf", PDF_B64)})
    assert sent["contents"] == [{"role": "user", "parts": [
        {"text": "Summarize."}, {"inlineData": {"mimeType": "application/pdf", "data": PDF_B64}}]}]  # fmt: skip
    GeminiRules()._validate(sent, 2.5)  # pyright: ignore[reportPrivateUsage]  (what the fake Gemini enforces)


@pytest.mark.parametrize(
    "data",
    ["file:///etc/passwd", "ftp://files.example/report.pdf", "gs://bucket/report.pdf", "files.example/report.pdf",
     "not base64!"],
)  # fmt: skip
def test_a_files_data_that_is_neither_base64_a_data_url_nor_an_http_url_is_a_400_never_sent(data: str) -> None:
    messages = user(file_part(data))
    assert http_file_urls(messages) == []  # nothing is fetched
    with pytest.raises(ProviderError) as exc_info:
        build(messages)
    error = exc_info.value
    assert (error.status_code, error.type, error.param) == (400, "invalid_request_error", "messages.[0].content.[1]")
    assert error.message == (
        f"messages.[0].content.[1]: {data!r} is neither base64 data, a data URL with a media type "
        "(data:application/pdf;base64,...) nor an http(s) URL."
    )


def test_a_files_data_url_without_a_media_type_is_a_400() -> None:
    with pytest.raises(ProviderError) as exc_info:
        build(user(file_part(f"data:;base64,{PDF_B64}")))
    assert (exc_info.value.status_code, exc_info.value.param) == (400, "messages.[0].content.[1]")
    assert "is not a data URL with a media type (data:application/pdf;base64,...)" in exc_info.value.message


@pytest.mark.parametrize("data", [PDF_B64, base64.urlsafe_b64encode(b"\xfb\xff" * 9).decode(), PDF_B64[:40] + "\n"])
def test_raw_base64_file_data_still_goes_inline_as_sent(data: str) -> None:
    part = build(user(file_part(data)))["contents"][0]["parts"][1]
    assert part == {"inlineData": {"mimeType": "application/pdf", "data": data}}


# ---- fetching ------------------------------------------------------------------------------------------------------


async def _pdf(request: Request) -> Response:
    return Response(PDF, media_type="application/pdf")


async def _untyped_pdf(request: Request) -> Response:
    return Response(PDF, media_type="application/octet-stream")


async def _text(request: Request) -> Response:
    return Response(b"plain notes", media_type="text/plain; charset=utf-8")


async def _login(request: Request) -> Response:
    return Response(b"<html>sign in</html>", media_type="text/html")


async def _png(request: Request) -> Response:
    return Response(base64.b64decode(PNG), media_type="image/png")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    routes = [Route("/report.pdf", _pdf), Route("/download", _untyped_pdf), Route("/notes", _text),
              Route("/login", _login), Route("/cat.png", _png)]  # fmt: skip
    with serve_app(Starlette(routes=routes)) as url:
        yield url


@pytest.fixture
async def pool() -> AsyncIterator[HttpPool]:
    pool = HttpPool()
    try:
        yield pool
    finally:
        await pool.aclose()


@pytest.mark.anyio
async def test_file_urls_may_hold_a_pdf_sniffed_or_served_and_plain_text(server: str, pool: HttpPool) -> None:
    urls = [f"{server}/report.pdf", f"{server}/download", f"{server}/notes"]
    fetched = await fetch_images(pool, urls, max_bytes=1 << 20, seconds=10, allow_private=True, files=set(urls))
    assert fetched == {urls[0]: ("application/pdf", PDF_B64), urls[1]: ("application/pdf", PDF_B64),
                       urls[2]: ("text/plain", base64.b64encode(b"plain notes").decode())}  # fmt: skip


@pytest.mark.anyio
async def test_a_file_url_answering_html_or_an_error_is_a_400_naming_the_file(server: str, pool: HttpPool) -> None:
    for path, reason in (("/login", "it is neither a PDF, plain text nor an image (content type text/html)"),
                         ("/missing.pdf", "HTTP 404")):  # fmt: skip
        url = f"{server}{path}"
        with pytest.raises(ImageFetchError) as exc_info:
            await fetch_images(pool, [url], max_bytes=1 << 20, seconds=10, allow_private=True, files={url})
        error = exc_info.value
        assert (error.status_code, error.code, error.param) == (400, "invalid_file_url", "messages")
        assert error.message == f"Could not use the file at {url}: {reason}"


@pytest.mark.anyio
async def test_files_and_images_share_the_byte_limit_and_the_url_cap(server: str, pool: HttpPool) -> None:
    image, pdf = f"{server}/cat.png", f"{server}/report.pdf"
    with pytest.raises(ImageFetchError) as exc_info:
        await fetch_images(pool, [image, pdf], max_bytes=len(PDF) + 10, seconds=10, allow_private=True, files={pdf})
    assert "bytes for the images and files of one request" in exc_info.value.message
    with pytest.raises(ImageFetchError) as exc_info:
        await fetch_images(pool, [image, pdf], max_bytes=1 << 20, seconds=10, max_urls=1, files={pdf})
    assert exc_info.value.message == (
        "The request has 2 image and file URLs; the gateway fetches at most 1 per request for Gemini."
    )


@pytest.mark.anyio
async def test_a_file_url_on_a_private_address_is_refused_by_default(server: str, pool: HttpPool) -> None:
    url = f"{server}/report.pdf"
    with pytest.raises(ImageFetchError) as exc_info:
        await fetch_images(pool, [url], max_bytes=1 << 20, seconds=10, files={url})
    assert exc_info.value.code == "invalid_file_url"
    assert "non-public address 127.0.0.1" in exc_info.value.message
