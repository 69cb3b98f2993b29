"""Files given by URL to a Gemini model, end to end over loopback: the official `openai` SDK (chat `file` parts,
Responses `input_file`) and `anthropic` SDK (Messages `document` url sources) against the real gateway, the fake
Gemini API behind it and a loopback file server. The gateway fetches the URL and sends Gemini the bytes; a URL it
cannot or may not fetch is a 400 naming it, and nothing reaches Gemini."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.config import parse_config
from hub.server import build_app
from tests.e2e.gemini_support import MASTER_KEY, gateway_config
from tests.fakes.gemini_upstream import API_KEY, FakeGemini
from tests.support.servers import serve_app

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PDF_SEEN = f"application/pdf {len(PDF)} bytes sha256:{hashlib.sha256(PDF).hexdigest()[:16]}"

Fake = tuple[FakeGemini, str]


async def _pdf(request: Request) -> Response:
    return Response(PDF, media_type="application/pdf")


async def _login(request: Request) -> Response:
    return Response(b"<html>sign in</html>", media_type="text/html")


@pytest.fixture(scope="module")
def files_url() -> Iterator[str]:
    with serve_app(Starlette(routes=[Route("/report.pdf", _pdf), Route("/login", _login)])) as url:
        yield url


@pytest.fixture(scope="module")
def fake_gemini() -> Iterator[Fake]:
    fake = FakeGemini()
    with serve_app(fake.app) as url:
        yield fake, url


@pytest.fixture(scope="module")
def gateway_url(fake_gemini: Fake) -> Iterator[str]:
    config = parse_config(gateway_config(fake_gemini[1]), {"FAKE_GEMINI_KEY": API_KEY})
    with serve_app(build_app(config)) as url:
        yield url


@pytest.fixture
def client(gateway_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=20) as c:
        yield c


@pytest.fixture
def claude(gateway_url: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gateway_url, api_key=MASTER_KEY, max_retries=0, timeout=20) as c:
        yield c


def chat_file(data: str) -> list[Any]:
    parts = [{"type": "text", "text": "Summarize."}, {"type": "file", "file": {"file_data": data, "filename": "r.pdf"}}]
    return [{"role": "user", "content": parts}]


def document(url: str) -> list[Any]:
    content = [{"type": "text", "text": "Summarize."}, {"type": "document", "source": {"type": "url", "url": url}}]
    return [{"role": "user", "content": content}]


@pytest.mark.parametrize("stream", [False, True])
def test_a_chat_file_part_with_an_http_url_reaches_gemini_as_the_pdf(
    client: openai.OpenAI, files_url: str, stream: bool
) -> None:
    messages = chat_file(f"{files_url}/report.pdf")
    if stream:
        chunks = client.chat.completions.create(model="g-echo", messages=messages, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        text = client.chat.completions.create(model="g-echo", messages=messages).choices[0].message.content
    assert text == f"text, {PDF_SEEN}"


def test_a_messages_document_url_source_reaches_gemini_as_the_pdf(
    claude: anthropic.Anthropic, files_url: str, fake_gemini: Fake
) -> None:
    message = claude.messages.create(model="g-echo", max_tokens=50, messages=document(f"{files_url}/report.pdf"))
    assert [(b.type, getattr(b, "text", None)) for b in message.content] == [("text", f"text, {PDF_SEEN}")]
    part = fake_gemini[0].requests[-1]["contents"][-1]["parts"][1]
    assert part == {"inlineData": {"mimeType": "application/pdf", "data": base64.b64encode(PDF).decode()}}


def test_a_responses_input_file_with_an_http_file_data_reaches_gemini_as_the_pdf(
    client: openai.OpenAI, files_url: str
) -> None:
    part: Any = {"type": "input_file", "file_data": f"{files_url}/report.pdf", "filename": "r.pdf"}
    response = client.responses.create(model="g-echo", input=[{"role": "user", "content": [part]}])
    assert response.output_text == PDF_SEEN


def test_a_responses_input_file_url_reaches_gemini_as_the_pdf(client: openai.OpenAI, files_url: str) -> None:
    """`file_url` is translated as an http(s) `file_data` is (ae0f1c0): Gemini's translation fetches it."""
    part: Any = {"type": "input_file", "file_url": f"{files_url}/report.pdf"}
    response = client.responses.create(model="g-echo", input=[{"role": "user", "content": [part]}])
    assert response.output_text == PDF_SEEN


@pytest.mark.parametrize("data", ["file:///etc/passwd", "ftp://127.0.0.1/report.pdf", "data:;base64,JVBERi0xLjQ="])
def test_a_file_data_no_upstream_can_take_is_a_400_naming_it_and_nothing_is_sent(
    client: openai.OpenAI, fake_gemini: Fake, data: str
) -> None:
    before = len(fake_gemini[0].requests)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="g-echo", messages=chat_file(data))
    assert caught.value.param == "messages.[0].content.[1]"
    assert f"messages.[0].content.[1]: {data!r} is " in caught.value.message
    assert len(fake_gemini[0].requests) == before


@pytest.mark.parametrize(
    ("path", "reason"),
    [("/login", "it is neither a PDF, plain text nor an image (content type text/html)"), ("/gone.pdf", "HTTP 404")],
)
def test_a_file_url_that_cannot_be_used_is_a_400_naming_it_in_either_sdk(
    client: openai.OpenAI, claude: anthropic.Anthropic, files_url: str, fake_gemini: Fake, path: str, reason: str
) -> None:
    before = len(fake_gemini[0].requests)
    url = f"{files_url}{path}"
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="g-echo", messages=chat_file(url))
    body: Any = caught.value.body
    assert (caught.value.code, body["message"]) == ("invalid_file_url", f"Could not use the file at {url}: {reason}")
    with pytest.raises(anthropic.BadRequestError) as refused:
        claude.messages.create(model="g-echo", max_tokens=50, messages=document(url))
    assert refused.value.body == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": f"Could not use the file at {url}: {reason}"},
    }
    assert len(fake_gemini[0].requests) == before


def test_a_file_url_on_a_private_address_is_refused_unless_the_model_allows_it(
    claude: anthropic.Anthropic, files_url: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as refused:
        claude.messages.create(
            model="g-public-images-only", max_tokens=50, messages=document(f"{files_url}/report.pdf")
        )
    assert "is the non-public address 127.0.0.1" in refused.value.message
    assert "allow_private_image_urls" in refused.value.message
