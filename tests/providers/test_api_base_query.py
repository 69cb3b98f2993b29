"""An `api_base` with a query (`?api-version=...`): every upstream call joins its path to the api_base's path and
keeps the query a query, for each provider and each endpoint the gateway calls (QA ops finding 5: the path went
after the query, `/v1?api-version=2024/chat/completions`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from hub.config import parse_config
from hub.server import build_app
from providers.base import upstream_url
from tests.fakes import gemini_upstream
from tests.fakes.anthropic_count import FakeAnthropicCounting
from tests.fakes.anthropic_upstream import API_KEY as ANTHROPIC_KEY
from tests.fakes.openai_upstream import API_KEY as OPENAI_KEY
from tests.fakes.responses_upstream import FakeResponses
from tests.support.servers import serve_app

MASTER_KEY = "sk-toolhub-api-base-query"
QUERY = "api-version=2024"
HELLO = [{"role": "user", "content": "hello"}]


class Recorder:
    """An upstream app, with the method, path and query of every request it receives noted as the server parsed
    them (uvicorn: the path up to the first `?`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.seen.append(f"{scope['method']} {scope['path']}?{scope['query_string'].decode()}")
        await self.app(scope, receive, send)


def model(alias: str, name: str, api_base: str, key: str, **info: Any) -> dict[str, Any]:
    params = {"model": name, "api_base": api_base, "api_key": key}
    return {"model_name": alias, "litellm_params": params, **({"model_info": info} if info else {})}


@pytest.fixture(scope="module")
def upstreams() -> dict[str, Recorder]:
    return {"openai": Recorder(FakeResponses().app), "anthropic": Recorder(FakeAnthropicCounting().app),
            "gemini": Recorder(gemini_upstream.FakeGemini().app)}  # fmt: skip


@pytest.fixture(scope="module")
def gateway(upstreams: dict[str, Recorder], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database = f"sqlite:///{tmp_path_factory.mktemp('api_base_query') / 'toolhub.db'}"
    with (
        serve_app(upstreams["openai"]) as oa,
        serve_app(upstreams["anthropic"]) as claude,
        serve_app(upstreams["gemini"]) as gem,
    ):
        models = [
            model("oa", "openai/text", f"{oa}/v1?{QUERY}", OPENAI_KEY),
            model("compat", "openai_compatible/text", f"{oa}/v1/?{QUERY}", OPENAI_KEY),
            model("oa-native", "openai/text", f"{oa}/v1?{QUERY}", OPENAI_KEY, supported_endpoints=["/v1/responses"]),
            model("claude", "anthropic/claude-sonnet-4-5", f"{claude}?{QUERY}", ANTHROPIC_KEY),
            model("claude-v1", "anthropic/claude-sonnet-4-5", f"{claude}/v1?{QUERY}", ANTHROPIC_KEY),
            model("gem", "gemini/gemini-2.5-text", f"{gem}?{QUERY}", gemini_upstream.API_KEY),
            model("gem-embed", "gemini/gemini-embedding-001", f"{gem}/v1beta?{QUERY}", gemini_upstream.API_KEY),
        ]
        raw = {"model_list": models, "general_settings": {"master_key": MASTER_KEY, "database_url": database}}
        with serve_app(build_app(parse_config(raw, {}))) as url:
            yield url


def call(gateway: str, path: str, body: dict[str, Any], method: str = "POST") -> httpx2.Response:
    headers = {"Authorization": f"Bearer {MASTER_KEY}"}
    response = httpx2.request(method, f"{gateway}{path}", json=body, headers=headers, timeout=20)
    assert response.status_code == 200, response.text
    return response


def last(recorder: Recorder, count: int = 1) -> list[str]:
    return recorder.seen[-count:]


def test_openai_chat_streamed_or_not_and_embeddings_keep_the_query(
    gateway: str, upstreams: dict[str, Recorder]
) -> None:
    for alias in ("oa", "compat"):
        call(gateway, "/v1/chat/completions", {"model": alias, "messages": HELLO})
        call(gateway, "/v1/chat/completions", {"model": alias, "messages": HELLO, "stream": True})
        call(gateway, "/v1/embeddings", {"model": alias, "input": ["a"]})
        assert last(upstreams["openai"], 3) == [
            f"POST /v1/chat/completions?{QUERY}",
            f"POST /v1/chat/completions?{QUERY}",
            f"POST /v1/embeddings?{QUERY}",
        ]


def test_anthropic_messages_and_count_tokens_keep_the_query_with_or_without_v1(
    gateway: str, upstreams: dict[str, Recorder]
) -> None:
    for alias in ("claude", "claude-v1"):
        call(gateway, "/v1/chat/completions", {"model": alias, "messages": HELLO})
        call(gateway, "/v1/chat/completions", {"model": alias, "messages": HELLO, "stream": True})
        call(gateway, "/v1/messages/count_tokens", {"model": alias, "messages": HELLO})
        assert last(upstreams["anthropic"], 3) == [
            f"POST /v1/messages?{QUERY}",
            f"POST /v1/messages?{QUERY}",
            f"POST /v1/messages/count_tokens?{QUERY}",
        ]


def test_gemini_puts_the_api_base_query_before_its_own(gateway: str, upstreams: dict[str, Recorder]) -> None:
    call(gateway, "/v1/chat/completions", {"model": "gem", "messages": HELLO})
    call(gateway, "/v1/chat/completions", {"model": "gem", "messages": HELLO, "stream": True})
    call(gateway, "/v1/embeddings", {"model": "gem-embed", "input": ["a"]})
    assert last(upstreams["gemini"], 3) == [
        f"POST /v1beta/models/gemini-2.5-text:generateContent?{QUERY}",
        f"POST /v1beta/models/gemini-2.5-text:streamGenerateContent?{QUERY}&alt=sse",
        f"POST /v1beta/models/gemini-embedding-001:batchEmbedContents?{QUERY}",
    ]


def test_responses_passthrough_and_its_upstream_delete_keep_the_query(
    gateway: str, upstreams: dict[str, Recorder]
) -> None:
    made = call(gateway, "/v1/responses", {"model": "oa-native", "input": "hello"}).json()
    call(gateway, f"/v1/responses/{made['id']}", {}, method="DELETE")
    assert last(upstreams["openai"], 2) == [f"POST /v1/responses?{QUERY}", f"DELETE /v1/responses/{made['id']}?{QUERY}"]


@pytest.mark.parametrize(
    ("api_base", "path", "query", "url"),
    [
        ("http://h/v1", "/chat/completions", "", "http://h/v1/chat/completions"),
        ("http://h/v1/", "/chat/completions", "", "http://h/v1/chat/completions"),
        ("http://h/v1/?a=1&b=2", "/embeddings", "", "http://h/v1/embeddings?a=1&b=2"),
        ("http://h?a=1", "/x:m", "alt=sse", "http://h/x:m?a=1&alt=sse"),
        ("http://h/v1#frag", "/responses", "alt=sse", "http://h/v1/responses?alt=sse"),
        ("http://u:p@h:8/v1?t=a/b", "/responses/r1", "", "http://u:p@h:8/v1/responses/r1?t=a/b"),
    ],
)
def test_upstream_url_joins_paths_and_queries(api_base: str, path: str, query: str, url: str) -> None:
    assert upstream_url(api_base, path, query) == url


def test_the_helper_is_the_only_url_builder() -> None:
    """Every module that calls an upstream builds its URL with `upstream_url`: no `api_base.rstrip("/") + path` left."""
    root = Path(__file__).resolve().parents[2]
    offenders = [
        str(path.relative_to(root))
        for folder in ("providers", "hub")
        for path in (root / folder).rglob("*.py")
        if "api_base.rstrip(" in path.read_text()
    ]
    assert offenders == []
