"""A Gemini request whose image or file URL cannot be used is a 400 whose `param` names the message part holding that
URL (`messages.[2].content.[1]`, the way the translation names a part it refuses); only the whole-request limits (the
URL cap, the byte limit reached together with other URLs) name `messages`. Driven through `GeminiProvider.complete`
against a loopback file server; the refusal comes before any upstream call (the api_base is a closed port)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from providers._http import HttpPool
from providers.base import ChatRequest, Deployment
from providers.gemini.images import ImageFetchError
from providers.gemini.provider import GeminiProvider
from tests.support.servers import serve_app

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
GIF = b"GIF89a" + b"\0" * 20


async def _pdf(request: Request) -> Response:
    return Response(PDF, media_type="application/pdf")


async def _big(request: Request) -> Response:
    return Response(PDF + b"\0" * 4000, media_type="application/pdf")


async def _gif(request: Request) -> Response:
    return Response(GIF, media_type="image/gif")


async def _login(request: Request) -> Response:
    return Response(b"<html>sign in</html>", media_type="text/html")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    routes = [Route("/report.pdf", _pdf), Route("/big.pdf", _big), Route("/cat.gif", _gif), Route("/login", _login)]
    with serve_app(Starlette(routes=routes)) as url:
        yield url


@pytest.fixture
async def pool() -> AsyncIterator[HttpPool]:
    pool = HttpPool()
    try:
        yield pool
    finally:
        await pool.aclose()


def file_part(url: str) -> dict[str, Any]:
    return {"type": "file", "file": {"file_data": url, "filename": "r.pdf"}}


def image_part(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def conversation(*parts: dict[str, Any], tool_parts: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """A user turn, a tool call, its result (`tool_parts` as its content), then a user turn holding `parts`."""
    call = {"id": "c1", "type": "function", "function": {"name": "look", "arguments": "{}"}}
    return [
        {"role": "user", "content": "Look."},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": tool_parts or "done"},
        {"role": "user", "content": [{"type": "text", "text": "Summarize."}, *parts]},
    ]


async def refusal(pool: HttpPool, messages: list[dict[str, Any]], *, private: bool = True, **options: Any) -> Any:
    deployment = Deployment(provider="gemini", model="gemini-2.5-flash", api_base="http://127.0.0.1:9", api_key="k",
                            fetch_private_urls=private)  # fmt: skip
    request = ChatRequest(body={"model": "gemini-2.5-flash", "messages": messages}, deployment=deployment)
    with anyio.fail_after(20), pytest.raises(ImageFetchError) as caught:
        await GeminiProvider(pool, **options).complete(request)
    error = caught.value
    return error.status_code, error.code, error.param


@pytest.mark.anyio
@pytest.mark.parametrize(("path", "code"), [("/login", "invalid_file_url"), ("/gone.pdf", "invalid_file_url")])
async def test_a_file_url_answering_html_or_404_names_its_part(
    server: str, pool: HttpPool, path: str, code: str
) -> None:
    messages = conversation(file_part(f"{server}/report.pdf"), file_part(f"{server}{path}"))
    assert await refusal(pool, messages) == (400, code, "messages.[3].content.[2]")


@pytest.mark.anyio
async def test_a_file_url_on_a_private_address_names_its_part(server: str, pool: HttpPool) -> None:
    messages = conversation(file_part(f"{server}/report.pdf"))
    assert await refusal(pool, messages, private=False) == (400, "invalid_file_url", "messages.[3].content.[1]")


@pytest.mark.anyio
async def test_a_file_larger_than_the_limit_alone_names_its_part(server: str, pool: HttpPool) -> None:
    messages = conversation(file_part(f"{server}/report.pdf"), file_part(f"{server}/big.pdf"))
    refused = await refusal(pool, messages, max_image_bytes=len(PDF) + 1000)
    assert refused == (400, "invalid_file_url", "messages.[3].content.[2]")


@pytest.mark.anyio
async def test_an_image_url_in_a_tool_result_names_the_tool_messages_part(server: str, pool: HttpPool) -> None:
    messages = conversation(tool_parts=[{"type": "text", "text": "see"}, image_part(f"{server}/gone.png")])
    assert await refusal(pool, messages) == (400, "invalid_image_url", "messages.[2].content.[1]")


@pytest.mark.anyio
async def test_a_url_given_twice_names_the_first_part_holding_it(server: str, pool: HttpPool) -> None:
    url = f"{server}/login"
    messages = conversation(file_part(url), file_part(url))
    assert await refusal(pool, messages) == (400, "invalid_file_url", "messages.[3].content.[1]")


@pytest.mark.anyio
async def test_the_whole_request_limits_name_messages(server: str, pool: HttpPool) -> None:
    together = conversation(image_part(f"{server}/cat.gif"), file_part(f"{server}/report.pdf"))
    status, _, param = await refusal(pool, together, max_image_bytes=len(PDF) + 10)  # either may be the one over
    assert (status, param) == (400, "messages")
    many = conversation(*(image_part(f"{server}/cat.gif?n={n}") for n in range(17)))
    assert await refusal(pool, many) == (400, "invalid_image_url", "messages")
