"""`/v1/responses` forwarded untranslated to a deployment that serves the Responses API itself.

Opt-in per deployment (`ModelRoute.responses_api`, read by hub/config from LiteLLM's `model_info.supported_endpoints`
naming `/v1/responses`, or from `litellm_params.use_responses_api: true`), for OpenAI-compatible providers only. The
upstream's ids, usage and stream events then reach the client unchanged; Toolhub adds what the chat path has for
keys (scopes, budgets, limits, spend log) and keeps its own copy of the response, scoped to the key, so that GET,
DELETE and `input_items` work and another key's id gets the same 404 as an unknown one.

A request stays on the translated path when it needs the hub: `mcp` tools or an alias with `mcp_servers` (a hub tool
is never forwarded as an `mcp` tool). A `previous_response_id` Toolhub made by translation (or another upstream, or
the same base under another API key, made) is expanded into its items, since this upstream never saw it; ids are
checked against the key first (hub/api/responses/upstream.py), and only one Toolhub never saw is forwarded as it is
(the upstream stores its own). The router's pick applies; its retries and fallbacks across deployments do not (the
deployment's `max_retries` do).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from hub.accounts.auth import Principal
from hub.accounts.usage import RESPONSES_FIELDS, UsageRecord, usage_counts
from hub.api.responses import owners, stored, upstream
from hub.api.responses.objects import JSON
from hub.api.responses.request import input_messages
from hub.api.sse import named, named_raw
from hub.cache.controls import parse_controls
from hub.config import ModelRoute
from hub.errors import BadRequest, json_response
from hub.gateway import sse
from hub.gateway.chat import (
    CLIENT_GONE,
    ClientDisconnected,
    cost_headers,
    finish_record,
    new_record,
    settled,
    until_disconnect,
)
from hub.gateway.relay import cut_short
from hub.state import HubState, hub_state
from hub.storage import StoreConflict
from providers import _http
from providers.base import Deployment, ProviderError, upstream_url
from providers.openai import parse_error

logger = logging.getLogger("toolhub.responses")
OPENAI_FAMILY = frozenset({"openai", "openai_compatible", "hosted_vllm", "vllm", "ollama", "ollama_chat"})
TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
REPLAYED = frozenset({"message", "function_call", "function_call_output"})
"""Items of a translated response resent to an upstream that never saw it (the hub's own items are not)."""


def native(route: ModelRoute) -> bool:
    """Whether `route` forwards `/v1/responses` to its upstream's own `/responses`."""
    return bool(getattr(route, "responses_api", False)) and route.deployment.provider in OPENAI_FAMILY


def _hub_tools(body: JSON) -> bool:
    return any(isinstance(t, dict) and t.get("type") == "mcp" for t in body.get("tools") or ())  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]


def _may_forward(state: HubState, body: JSON) -> bool:
    routes = state.config.models.get(body["model"]) or ()
    return any(native(r) for r in routes) and not _hub_tools(body)


async def forward(request: Request, principal: Principal, body: JSON, started: float) -> Response | None:
    """The upstream's own answer to `body`, or None when the request goes the translated way."""
    state = hub_state(request)
    if not _may_forward(state, body):
        return None
    target = state.router.resolve(body["model"], principal, body)
    if not native(target.route) or target.route.mcp_servers:
        return None
    call = _Forward(request, principal, body, target.route.deployment)
    await call.prepare()
    record = new_record(request, target, body, principal.key_id)
    if state.guard is not None:
        record.ticket = await state.guard.admit(principal, target.route)
    try:
        if body.get("stream"):
            return await call.stream(state, record, started)
        return await call.complete(state, record, started)
    except ClientDisconnected:
        return Response(status_code=CLIENT_GONE)


def chat_usage(usage: Any, provider: str) -> JSON | None:
    """Responses usage as the chat usage the spend log counts (None: the upstream sent none).

    Raises:
        ProviderError: 502 `upstream_bad_response` naming the upstream's field when a count or its details are not
            readable (`hub.accounts.usage.usage_counts`).
    """
    if usage is None:
        return None
    prompt, completion, cached, reasoning = usage_counts(usage, provider, RESPONSES_FIELDS)
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "prompt_tokens_details": {"cached_tokens": cached},
            "completion_tokens_details": {"reasoning_tokens": reasoning}}  # fmt: skip


def _replayable(items: list[Any]) -> list[Any]:
    """The stored items another upstream can be given again; any other is left out (what a lenient upstream
    took before may be of no type at all)."""
    out: list[Any] = []
    for item in items:
        kind = item.get("type", "message") if isinstance(item, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if isinstance(kind, str) and kind in REPLAYED:
            out.append({k: v for k, v in item.items() if k not in ("id", "status")})  # pyright: ignore[reportUnknownVariableType, reportUnknownMemberType]
    return out


def _as_items(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    return list(value) if isinstance(value, list) else []  # pyright: ignore[reportUnknownArgumentType]


def _event_type(data: bytes) -> str:
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError:
        return ""
    kind = event.get("type") if isinstance(event, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    return kind if isinstance(kind, str) else ""


def _response_of(data: bytes) -> JSON:
    """The response a terminal event carries; empty when it carries none Toolhub can read."""
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    final = event.get("response") if isinstance(event, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    return final if isinstance(final, dict) else {}  # pyright: ignore[reportUnknownVariableType]


class _Forward:
    """One forwarded request: the upstream body, and what Toolhub keeps of the exchange."""

    def __init__(self, request: Request, principal: Principal, body: JSON, deployment: Deployment) -> None:
        self.request, self.principal, self.body, self.deployment = request, principal, body, deployment
        self.upstream: JSON = {**body, "model": deployment.model}
        self.headers: dict[str, str] = {}
        if "cache" in self.upstream:  # Toolhub's own controls (hub/cache): a forwarded response is not cached, and
            controls = self.upstream.pop("cache")  # an upstream's /responses refuses a parameter it does not know
            if hub_state(request).extras.get("cache") is not None:
                parse_controls(controls)  # malformed ones get the 400 they get on the translated way
            self.headers["x-toolhub-dropped-params"] = "cache"
        self.earlier: list[Any] = []
        self.history: list[Any] = []

    async def prepare(self) -> None:
        """Check the ids the request names (hub/api/responses/upstream.py) and resolve `previous_response_id`: the
        key's own row, expanded if this upstream never saw it.

        Raises:
            NotFound: an id of another key's, or one Toolhub made or saw and no longer has.
        """
        store = hub_state(self.request).extras.get("store")
        if store is None:
            return  # nothing kept, nothing to check (the module docstring of upstream.py says what that means)
        self.upstream = await upstream.references(self.request, store, self.principal, self.deployment, self.upstream)
        previous = self.body.get("previous_response_id")
        row = await upstream.previous(store, self.principal, previous) if isinstance(previous, str) else None
        if row is None:
            return  # none, or not Toolhub's: the upstream's own (or unknown there too, which it says)
        self.earlier, self.history = [*row.input_items, *row.response["output"]], row.messages
        if not upstream.made_by(row.response, self.deployment):  # translated, or another upstream's
            del self.upstream["previous_response_id"]
            self.upstream["input"] = [*_replayable(self.earlier), *_as_items(self.upstream.get("input"))]

    def _post(self, stream: bool) -> contextlib.AbstractAsyncContextManager[Any]:
        deployment = self.deployment
        url = upstream_url(deployment.api_base, "/responses")
        headers = {"Content-Type": "application/json", **deployment.headers}
        if deployment.api_key:
            headers["Authorization"] = f"Bearer {deployment.api_key}"
        pool = hub_state(self.request).pool
        payload = orjson.dumps(self.upstream)
        return _http.post(pool, deployment, url, payload, headers, stream=stream, parse_error=parse_error)

    async def _complete(self) -> JSON:
        async with self._post(False) as response:
            data = await _http.read_json(self.deployment.provider, response, self.deployment.timeout)
        if not isinstance(data, dict) or data.get("object") != "response":  # pyright: ignore[reportUnknownMemberType]
            provider = self.deployment.provider
            raise ProviderError(f"{provider} sent an unexpected /responses body: {str(data)[:200]}", status_code=502,
                                provider=provider, code="upstream_bad_response")  # fmt: skip
        return data  # pyright: ignore[reportUnknownVariableType]

    async def complete(self, state: HubState, record: UsageRecord, started: float) -> Response:
        with settled(state, record, started):
            upstream_started = time.perf_counter()
            try:
                response = await until_disconnect(self.request, self._complete)
            finally:
                record.upstream_ms = (time.perf_counter() - upstream_started) * 1000
            record.add_usage(chat_usage(response.get("usage"), record.provider))  # unreadable: a 502 row
        finish_record(state, record, started, 200)
        await self.save(response)
        return json_response(response, headers={**cost_headers(record), **self.headers})

    async def save(self, response: JSON) -> None:
        """Keep the response, never at the cost of the answer: the upstream answered (and was paid), so a copy
        Toolhub cannot keep is logged and left out, and its id then gets a 404 from this key as one not stored.

        An id Toolhub already has (another upstream's with the same ids, or one restarted) stays with its first
        owner and what it first named: the new copy is not kept, and neither are its items' owners."""
        alias, ident = self.body.get("model"), response.get("id")
        try:
            await self._keep(response)
        except StoreConflict:
            logger.warning("%s: the upstream's response id %s is one Toolhub already has (another upstream's or an "
                           "earlier response): answered, not stored", alias, ident)  # fmt: skip
        except Exception:  # the database is down (or a body Toolhub cannot read): the client still gets the answer
            logger.exception("%s: the upstream's response %s could not be stored: answered, not stored", alias, ident)

    async def _keep(self, response: JSON) -> None:
        """Keep the response (marked as the upstream's) with its items and, where translatable, the conversation;
        and which key made its ids, which outlives the row.

        Raises:
            StoreConflict: the id is stored already, or another key's (hub/api/responses/owners.py).
        """
        store = hub_state(self.request).extras.get("store")
        ident = response.get("id")
        if store is None or response.get("store") is False or not isinstance(ident, str):
            return
        owner = await owners.find(store, ident)
        if owner is not None and owner.key_hash != self.principal.key_id:
            raise StoreConflict(f"{ident} is another key's")
        items = [*self.earlier, *stored.input_items(self.body.get("input"))]
        try:
            history = [*self.history, *input_messages(self.body.get("input"))]
        except BadRequest:  # items only the upstream understands: a translated continuation starts afresh
            history = []
        kept = {**response, stored.UPSTREAM: upstream.mark(self.deployment)}
        await stored.save(self.request, self.principal, kept, items, history, None)
        made = [i["id"] for i in response.get("output") or () if isinstance(i, dict) and isinstance(i.get("id"), str)]
        await owners.record(store, self.principal.key_id, ident, made)

    async def stream(self, state: HubState, record: UsageRecord, started: float) -> Response:
        stack = contextlib.AsyncExitStack()
        with settled(state, record, started):
            upstream_started = time.perf_counter()
            try:
                response = await until_disconnect(self.request, lambda: stack.enter_async_context(self._post(True)))
            finally:
                record.upstream_ms = (time.perf_counter() - upstream_started) * 1000
        timeout = self.deployment.read_timeout(True)
        events = _http.iter_sse(self.deployment.provider, response, timeout)
        relay = self._relay(events, stack, state, record, started)
        return StreamingResponse(relay, media_type="text/event-stream", headers={**sse.HEADERS, **self.headers})

    async def _relay(
        self,
        events: AsyncIterator[tuple[str, bytes]],
        stack: contextlib.AsyncExitStack,
        state: HubState,
        record: UsageRecord,
        started: float,
    ) -> AsyncIterator[bytes]:
        """The upstream's events as they come; the final response is stored before the client reads it."""
        status, error, sent = 200, None, 0
        try:
            async for label, data in events:
                kind = label or _event_type(data)  # servers that send no `event:` lines name it in the JSON
                if kind in TERMINAL:
                    final = _response_of(data)
                    record.add_usage(chat_usage(final.get("usage"), record.provider))
                    await self.save(final)
                sent += 1
                yield named_raw(kind, data)
        except ProviderError as exc:
            status, error = exc.status_code, exc.message
            detail = {"type": "error", "sequence_number": sent, "code": exc.code or exc.type, "message": exc.message,
                      "param": exc.param}  # fmt: skip
            yield named("error", detail)
        except anyio.get_cancelled_exc_class() as exc:  # the client left, or the shutdown ended the stream
            status, error = cut_short(exc)
            raise
        except Exception as exc:  # a bug: the stream ends cut, and the spend log says so
            status, error = 500, f"{type(exc).__name__}: {exc}"
            raise
        finally:
            with anyio.CancelScope(shield=True):
                await stack.aclose()
            finish_record(state, record, started, status, error)
