"""Images and PDFs given by http(s) URL reach Anthropic as `url` sources, which Claude fetches itself, end to end over
loopback against the fake Messages server (which enforces the real source rules):

- a chat `file` part whose `file_data` is an http(s) URL, and an `image_url` http(s) URL (openai SDK, chat);
- a Responses `input_file` `file_url` and `input_image` URL (openai SDK, /v1/responses);
- a Messages `document` and `image` url source (anthropic SDK, /v1/messages);
- a file URL that is no http(s) URL: a 400 naming the part, and nothing sent upstream.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from tests.e2e import anthropic_conftest as fixtures
from tests.e2e.anthropic_conftest import MASTER_KEY
from tests.fakes.anthropic_rules import API_KEY, VERSION
from tests.fakes.anthropic_upstream import FakeAnthropic

fake_anthropic, fake = fixtures.fake_anthropic, fixtures.fake
anthropic_gateway, claude = fixtures.anthropic_gateway, fixtures.claude

PDF_URL = "https://example.com/reports/q3.pdf"
CAT = "https://example.com/cat.jpg"
SENT: Any = [{"role": "user", "content": [
    {"type": "text", "text": "summarise"},
    {"type": "document", "source": {"type": "url", "url": PDF_URL}},
    {"type": "image", "source": {"type": "url", "url": CAT}},
]}]  # fmt: skip
"""The Anthropic `messages` each inbound API's request below becomes."""


@pytest.fixture
def messages_client(anthropic_gateway: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=anthropic_gateway, api_key=MASTER_KEY, max_retries=0, timeout=20) as c:
        yield c


def test_a_chat_file_and_image_by_url_become_url_sources(claude: openai.OpenAI, fake: FakeAnthropic) -> None:
    content: Any = [{"type": "text", "text": "summarise"},
                    {"type": "file", "file": {"file_data": PDF_URL, "filename": "q3.pdf"}},
                    {"type": "image_url", "image_url": {"url": CAT}}]  # fmt: skip
    completion = claude.chat.completions.create(
        model="claude-sonnet-4-5", messages=[{"role": "user", "content": content}]
    )
    assert completion.choices[0].message.content == "You said: summarise [images: url]"
    assert fake.requests[-1]["messages"] == SENT


def test_a_responses_file_url_and_image_url_become_url_sources(claude: openai.OpenAI, fake: FakeAnthropic) -> None:
    content: Any = [{"type": "input_text", "text": "summarise"}, {"type": "input_file", "file_url": PDF_URL},
                    {"type": "input_image", "image_url": CAT, "detail": "auto"}]  # fmt: skip
    response = claude.responses.create(model="claude-sonnet-4-5", input=[{"role": "user", "content": content}])
    assert response.output_text == "You said: summarise [images: url]"
    assert fake.requests[-1]["messages"] == SENT


def test_a_messages_document_and_image_url_source_reach_anthropic(
    messages_client: anthropic.Anthropic, fake: FakeAnthropic
) -> None:
    content: Any = [{"type": "text", "text": "summarise"},
                    {"type": "document", "source": {"type": "url", "url": PDF_URL}},
                    {"type": "image", "source": {"type": "url", "url": CAT}}]  # fmt: skip
    message = messages_client.messages.create(
        model="claude-sonnet-4-5", max_tokens=100, messages=[{"role": "user", "content": content}]
    )
    assert [b.text for b in message.content if b.type == "text"] == ["You said: summarise [images: url]"]
    assert fake.requests[-1]["messages"] == SENT
    assert fake.requests[-1]["max_tokens"] == 100


@pytest.mark.parametrize(
    ("data", "scheme"), [("ftp://example.com/q3.pdf", "ftp"), ("file:///etc/q3.pdf", "file"), ("S3://b/q3.pdf", "S3")]
)
def test_a_file_url_that_is_not_http_is_a_400_naming_the_part(
    claude: openai.OpenAI, fake: FakeAnthropic, data: str, scheme: str
) -> None:
    content: Any = [{"type": "text", "text": "summarise"}, {"type": "file", "file": {"file_data": data}}]
    sent = len(fake.requests)
    with pytest.raises(openai.BadRequestError) as caught:
        claude.chat.completions.create(model="claude-sonnet-4-5", messages=[{"role": "user", "content": content}])
    assert caught.value.param == "messages.[0].content.[1].file.file_data"
    assert caught.value.message.removeprefix("Error code: 400 - ") == (
        f"messages.[0].content.[1]: a file's URL must be http(s) for Anthropic models, got a '{scheme}' URL; or send "
        "the PDF inline, as a base64 data URL (data:application/pdf;base64,...)."
    )
    assert len(fake.requests) == sent


@pytest.mark.parametrize(
    ("source", "refusal"),
    [({"type": "url", "url": "ftp://example.com/q3.pdf"}, "messages.0.content.0.source.url.url: invalid URL"),
     ({"type": "base64", "media_type": "image/png", "data": "AAAA"},
      "messages.0.content.0.source.base64.media_type: Input should be 'application/pdf'"),
     ({"type": "link", "url": PDF_URL}, "messages.0.content.0.source: Input tag 'link' does not match any of the "
                                        "expected tags: 'base64', 'text', 'content', 'url', 'file'")],
)  # fmt: skip
def test_the_fake_refuses_a_document_source_anthropic_refuses(
    fake_anthropic: tuple[FakeAnthropic, str], source: Any, refusal: str
) -> None:
    body = {"model": "claude-sonnet-4-5", "max_tokens": 5,
            "messages": [{"role": "user", "content": [{"type": "document", "source": source}]}]}  # fmt: skip
    headers = {"x-api-key": API_KEY, "anthropic-version": VERSION}
    answered = httpx2.post(f"{fake_anthropic[1]}/v1/messages", json=body, headers=headers)
    assert answered.status_code == 400
    assert answered.json()["error"] == {"type": "invalid_request_error", "message": refusal}
