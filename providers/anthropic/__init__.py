"""Anthropic Messages API behind the OpenAI chat-completions contract (`anthropic/...` models).

The translation is pure and lives in `request` (OpenAI -> Anthropic), `messages`, `names`, `response` and `stream`
(Anthropic -> OpenAI); this module does the I/O and keeps the one piece of state Anthropic forces on a gateway:
thinking blocks. With thinking on, Anthropic wants an assistant turn that called tools sent back starting with its
thinking blocks, signatures intact; OpenAI clients drop them. So the provider keeps them in a `TTLCache` keyed by the
turn's tool-call ids and restores them on the next request of that conversation. Bounds: `max_turns` tool-call ids
(parallel calls of one turn share one entry's blocks) for `ttl` seconds; entries are per process, so a restart or
another replica degrades to a request without thinking (see `request`), never to an error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Sequence

import orjson

from providers import _http
from providers._cache import TTLCache
from providers.anthropic.request import Translated, build_request
from providers.anthropic.response import PROVIDER, parse_error, thinking_blocks, to_completion
from providers.anthropic.stream import StreamTranslator
from providers.base import JSON, ChatRequest, Deployment, ProviderError, bad_response, split_api_base, upstream_url

__all__ = ["ANTHROPIC_VERSION", "AnthropicProvider", "messages_url"]

ANTHROPIC_VERSION = "2023-06-01"
logger = logging.getLogger("toolhub.providers.anthropic")

_Turn = tuple[str, list[JSON]]
"""(upstream model, thinking blocks): signatures are bound to the model that made them."""


class AnthropicProvider:
    """Anthropic's Messages API, translated to and from OpenAI chat completions."""

    name = PROVIDER

    def __init__(self, pool: _http.HttpPool, *, max_turns: int = 4096, ttl: float = 3600.0) -> None:
        self._pool = pool
        self.thinking: TTLCache[_Turn] = TTLCache(max_items=max_turns, ttl=ttl)
        """Tool-call id -> the thinking blocks of the assistant turn that made the call."""

    async def complete(self, request: ChatRequest) -> JSON:
        deployment = request.deployment
        tr = self._translate(request, stream=False)
        async with _http.post(
            self._pool, deployment, messages_url(deployment), orjson.dumps(tr.body), _headers(deployment),
            stream=False, parse_error=parse_error,
        ) as response:  # fmt: skip
            message = await _http.read_json(PROVIDER, response, deployment.timeout)
        if not isinstance(message, dict) or not isinstance(message.get("content"), list):
            raise bad_response(PROVIDER, f"{PROVIDER} sent an unexpected body: {str(message)[:200]}")
        completion = to_completion(message, tr.names, created=int(time.time()), json_object=tr.json_object)
        calls = completion["choices"][0]["message"].get("tool_calls") or []
        self._keep(deployment, [c["id"] for c in calls], thinking_blocks(message["content"]))
        return completion

    async def stream(self, request: ChatRequest) -> AsyncIterator[JSON]:
        deployment = request.deployment
        tr = self._translate(request, stream=True)
        translator = StreamTranslator(
            tr.names, model=deployment.model, created=int(time.time()), json_object=tr.json_object
        )
        async with _http.post(
            self._pool, deployment, messages_url(deployment), orjson.dumps(tr.body), _headers(deployment),
            stream=True, parse_error=parse_error,
        ) as response:  # fmt: skip
            async for event, data in _http.iter_sse(PROVIDER, response, deployment.read_timeout(True)):
                chunks = translator.feed(event, _event_json(data))
                if translator.done:
                    self._keep(deployment, translator.tool_call_ids, translator.thinking_blocks)
                for chunk in chunks:
                    yield chunk
                if translator.done:
                    return
        raise ProviderError(f"{PROVIDER} stream ended before message_stop", status_code=502, provider=PROVIDER,
                            code="upstream_incomplete_stream")  # fmt: skip

    def _translate(self, request: ChatRequest, *, stream: bool) -> Translated:
        model = request.deployment.model

        def restore(ids: Sequence[str]) -> list[JSON] | None:
            for call_id in ids:
                turn = self.thinking.get(call_id)
                if turn is not None and turn[0] == model:
                    return list(turn[1])
            return None

        tr = build_request(request.body, request.deployment, restore, stream=stream, dropped=request.dropped)
        for note in tr.notes:
            logger.warning("anthropic request %s (%s): %s", request.request_id or "-", model, note)
        return tr

    def _keep(self, deployment: Deployment, call_ids: list[str], blocks: list[JSON]) -> None:
        if not call_ids or not blocks:
            return
        turn: _Turn = (deployment.model, blocks)
        for call_id in call_ids:
            self.thinking.put(call_id, turn)


def messages_url(deployment: Deployment, path: str = "/messages") -> str:
    """The URL of a Messages API endpoint (`/messages`, `/messages/count_tokens`): `/v1` is added unless the
    api_base's path ends with it, and a query of the api_base stays the query."""
    base, _ = split_api_base(deployment.api_base)
    return upstream_url(deployment.api_base, path if base.endswith("/v1") else f"/v1{path}")


def _headers(deployment: Deployment) -> dict[str, str]:
    """`anthropic-beta` and other extra headers come from the deployment's `extra_headers`."""
    headers = {"content-type": "application/json", "anthropic-version": ANTHROPIC_VERSION, **deployment.headers}
    if deployment.api_key:
        headers["x-api-key"] = deployment.api_key
    return headers


def _event_json(data: bytes) -> JSON:
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise bad_response(PROVIDER, f"{PROVIDER} sent a stream event that is not JSON: {data[:200]!r}") from exc
    if not isinstance(event, dict):
        raise bad_response(PROVIDER, f"{PROVIDER} sent a stream event that is not an object")
    return event
