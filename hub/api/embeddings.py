"""`POST /v1/embeddings`: OpenAI's embeddings API for `openai/`, OpenAI-compatible and `gemini/` deployments.

Keys, model permissions, budgets and rate limits apply as on chat, and each request leaves one usage record (spend
log, cost). Upstreams are always asked for floats; `encoding_format: base64` (the openai SDK's default) is encoded
here, little-endian float32 as OpenAI does, so it works for Gemini too. Gemini reports no token usage: it is
estimated at ~4 characters a token.

The router serves embeddings as it serves chat (`RoutedCall.run`: its pick, retries, cooldowns and fallbacks).
With the response cache on (and `supported_call_types` naming `embedding`, as LiteLLM's default does), answers are
cached like chat answers: the key is the alias, the input and `dimensions` (not `encoding_format`, applied after),
a hit costs nothing and says so in `x-toolhub-cache-hit`, and identical requests in flight wait for the first.
"""

from __future__ import annotations

import base64
import math
import struct
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.accounts.usage import UsageRecord, usage_counts
from hub.cache.service import Lookup, ResponseCache
from hub.errors import BadRequest, json_response
from hub.gateway.chat import (
    CLIENT_GONE,
    ClientDisconnected,
    cost_headers,
    finish_record,
    new_record,
    settled,
    until_disconnect,
)
from hub.gateway.requests import read_json_body
from hub.gateway.routing import Target
from hub.state import HubState, authenticate, hub_state
from providers.base import JSON, ChatRequest, Embedder, ProviderError, bad_response

FORWARDED = ("input", "dimensions", "user")
CHARS_PER_TOKEN = 4


async def embeddings(request: Request) -> Response:
    state = hub_state(request)
    started = time.perf_counter()
    principal = await authenticate(request)
    body = check_embeddings_request(await read_json_body(request, state.config.max_request_bytes))
    target = state.router.resolve(body["model"], principal, body)
    record = new_record(request, target, {}, principal.key_id)  # `{}`: never a stream, whatever the body says
    target.provider.record = record  # the router names the deployment (and fallback group) that answered on it
    lookup = _lookup(state.extras.get("cache"), body, target, record)
    if state.guard is not None:
        record.ticket = await state.guard.admit(principal, target.route, body)  # the inputs, no output
    try:
        answer, headers = await _answer(request, state, target, body, record, started, lookup)
    except ClientDisconnected:
        return Response(status_code=CLIENT_GONE)
    finally:
        if lookup is not None:
            lookup.release(None)  # waiters of a failed call go upstream themselves (no-op once saved)
    data = [_encoded(item, body.get("encoding_format")) for item in answer["data"]]
    out = {"object": "list", "data": data, "model": body["model"], "usage": answer["usage"]}
    return json_response(out, headers={**cost_headers(record), **headers})


def _lookup(cache: ResponseCache | None, body: JSON, target: Target, record: UsageRecord) -> Lookup | None:
    """The request's cache lookup; None without a cache, or one that does not cache embeddings. The record tells
    the cache when a fallback answered: that answer is neither stored nor handed to waiters under this alias."""
    if cache is None or not getattr(cache.settings, "embeddings", True):
        return None
    keyed = {"endpoint": "embeddings", **{k: v for k, v in body.items() if k != "encoding_format"}}
    return cache.begin(keyed, target.route, False, record)  # takes the `cache` controls out of `keyed`


async def _answer(
    request: Request, state: HubState, target: Target, body: JSON, record: UsageRecord, started: float,
    lookup: Lookup | None,
) -> tuple[JSON, dict[str, str]]:  # fmt: skip
    """(The upstream's answer with usage, or the cached one; the router's `x-litellm-*` headers for an upstream
    answer, as chat gives them, and the cache's)."""
    if lookup is not None:
        with settled(state, record, started):
            found: Any = await lookup.cache.find(lookup)
            if found is None and (leader := lookup.cache.follow(lookup, stream=False)) is not None:
                found = await until_disconnect(request, lambda: lookup.cache.wait(leader))
        lookup.cache.count(lookup, found)
        if found is not None:
            record.cache_hit = True  # no tokens on the record: a hit costs nothing
            finish_record(state, record, started, 200)
            return (orjson.loads(found) if isinstance(found, bytes) else found), lookup.headers()
    upstream = {name: body[name] for name in FORWARDED if body.get(name) is not None}
    with settled(state, record, started):
        upstream_started = time.perf_counter()
        try:
            answer = await until_disconnect(request, lambda: _embed(target, upstream, record.request_id))
        finally:
            record.upstream_ms = (time.perf_counter() - upstream_started) * 1000
        answer = {"data": _checked(answer["data"]), "usage": _usage(answer.get("usage"), body["input"], record)}
        record.add_usage(answer["usage"])
    finish_record(state, record, started, 200)
    if lookup is not None:
        await lookup.save(answer)
    return answer, {**target.provider.headers(), **(lookup.headers() if lookup is not None else {})}


async def _embed(target: Target, body: JSON, request_id: str) -> JSON:
    """The embeddings call, through the router when it runs such calls (`RoutedCall.run`: retries and fallbacks)."""
    call: Any = target.provider
    if hasattr(call, "run"):
        return await call.run(
            ChatRequest(body=body, deployment=target.route.deployment, request_id=request_id), _attempt, _serves
        )
    return await _embedder(target).embed(target.route.deployment, body)


def _serves(slot: Any) -> bool:
    """Whether a fallback group's deployment can answer (a chat-only default fallback keeps the primary's error)."""
    return slot.provider is not None and hasattr(slot.provider, "embed")


async def _attempt(slot: Any, request: ChatRequest) -> JSON:
    """One attempt on the deployment the router picked (`request.deployment`)."""
    provider = slot.provider
    if provider is None or not hasattr(provider, "embed"):  # a client error: neither retried nor fallen back
        raise ProviderError(f"The model '{slot.route.alias}' ({request.deployment.provider}) does not serve "
                            "embeddings.", status_code=400, provider="router", type="invalid_request_error",
                            code="model_not_supported", param="model")  # fmt: skip
    return await provider.embed(request.deployment, request.body)


def check_embeddings_request(body: Any) -> JSON:
    """The body with `input` as a list (of strings or of token arrays); raises BadRequest naming the field."""
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.", code="invalid_request")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise BadRequest("You must provide a model parameter.", param="model", code="missing_required_parameter")
    body["input"] = _inputs(body.get("input"))
    dimensions = body.get("dimensions")
    if dimensions is not None and (type(dimensions) is not int or dimensions < 1):
        raise BadRequest("'dimensions' must be a positive integer.", param="dimensions", code="invalid_value")
    if body.get("encoding_format") not in (None, "float", "base64"):
        raise BadRequest("'encoding_format' must be 'float' or 'base64'.", param="encoding_format",
                         code="invalid_value")  # fmt: skip
    return body  # pyright: ignore[reportUnknownVariableType]


def _inputs(value: Any) -> list[Any]:
    if isinstance(value, str) and value:
        return [value]
    if _tokens(value):
        return [value]
    if isinstance(value, list) and value and all((isinstance(v, str) and v) or _tokens(v) for v in value):  # pyright: ignore[reportUnknownVariableType]
        return value  # pyright: ignore[reportUnknownVariableType]
    raise BadRequest("'input' must be a non-empty string, a non-empty array of non-empty strings, or token arrays.",
                     param="input", code="invalid_value")  # fmt: skip


def _tokens(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(type(t) is int for t in value)  # pyright: ignore[reportUnknownVariableType]


def _embedder(target: Target) -> Embedder:
    call = target.provider
    slot = call.first or call.group.usable[0]
    if slot.provider is None or not hasattr(slot.provider, "embed"):
        provider = target.route.deployment.provider
        raise BadRequest(f"The model '{target.route.alias}' ({provider}) does not serve embeddings.", param="model",
                         code="model_not_supported")  # fmt: skip
    return slot.provider  # pyright: ignore[reportReturnType]


def _usage(usage: Any, inputs: list[Any], record: UsageRecord) -> JSON:
    """The upstream's count, or (Gemini) an estimate: ~4 characters a token, a token array its length.

    Raises:
        ProviderError: 502 `upstream_bad_response`, a usage that is there but whose counts are not counts.
    """
    if usage is not None:
        usage_counts(usage, record.provider)
    if isinstance(usage, dict) and usage.get("prompt_tokens") is not None:
        prompt: int = usage["prompt_tokens"]
    else:
        prompt = sum(len(x) if isinstance(x, list) else math.ceil(len(x) / CHARS_PER_TOKEN) for x in inputs)
    return {"prompt_tokens": prompt, "total_tokens": prompt}


def _checked(data: list[Any]) -> list[JSON]:
    """The upstream's `data`, each item an object whose `embedding` is a non-empty array of float32 numbers (what
    `_encoded` packs), and `index` an integer when given.

    Raises:
        ProviderError: 502 `upstream_bad_response` naming what was wrong.
    """
    for item in data:
        if not isinstance(item, dict):
            raise _bad_answer("an item of 'data' that is not an object", item)
        vector: Any = item.get("embedding")  # pyright: ignore[reportUnknownMemberType]
        if not isinstance(vector, list) or not vector:
            raise _bad_answer("an 'embedding' that is not a non-empty array", vector)
        if "index" in item and type(item["index"]) is not int:
            raise _bad_answer("an 'index' that is not an integer", item["index"])
        try:
            struct.pack(f"<{len(vector)}f", *vector)  # pyright: ignore[reportUnknownArgumentType]
        except (struct.error, OverflowError, TypeError) as exc:  # a string, an array, a null, beyond float32
            raise _bad_answer(f"an 'embedding' that is not float32 numbers ({exc})", vector[:4]) from exc
    return data


def _bad_answer(what: str, value: Any) -> ProviderError:
    return bad_response("embeddings", f"The upstream sent {what}: {repr(value)[:100]}")


def _encoded(item: JSON, encoding: Any) -> JSON:
    vector = item["embedding"]
    if encoding == "base64":
        vector = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return {"object": "embedding", "index": item.get("index", 0), "embedding": vector}


ROUTES = [
    Route("/v1/embeddings", embeddings, methods=["POST"]),
    Route("/embeddings", embeddings, methods=["POST"]),
]
