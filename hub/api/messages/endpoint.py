"""`POST /v1/messages` and `/v1/messages/count_tokens`: Anthropic's Messages API over the chat pipeline.

The request is translated to a Chat Completions body and served by `run_chat` (keys, limits, router, tool loop,
accounting); its answer, whatever kind of response it is, is translated back on the way out by `AnthropicResponse`,
which wraps it at the ASGI level. Every error, before or after `run_chat`, is rendered in Anthropic's shape (an
unexpected one too, as a 500 `api_error`: `AnthropicRoute`), and so are an unknown path under `/v1/messages/` (404) and
another method than POST (405).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from hub.api.locations import Locations
from hub.api.messages import count_tokens as counting
from hub.api.messages.request import locations, to_chat
from hub.api.messages.response import error_body, error_status, from_openai_error, to_message
from hub.api.messages.stream import EventTranslator
from hub.config import Config
from hub.errors import AuthenticationError, HubError, json_response
from hub.gateway.chat import run_chat
from hub.gateway.requests import check_chat_request, read_json_body
from hub.loop.tools import REPORT_OUTPUT
from hub.ops.logs import printable
from hub.state import authenticate, hub_state
from providers.base import JSON, ProviderError

logger = logging.getLogger("toolhub")
MISSING_KEY = "Missing API key. Send your key in the x-api-key header (or Authorization: Bearer)."
"""The 401 without a key: Anthropic's clients send `x-api-key` (the gateway's shared text names only Bearer)."""
CRASHED = "The gateway failed while handling this request."


async def messages(request: Request) -> Response:
    started = time.perf_counter()
    where = locations()  # errors about the chat body name the client's blocks (the system prompt shifts them)
    try:
        principal = await authenticate(request)
        state = hub_state(request)
        raw = await read_json_body(request, state.config.max_request_bytes)
        body = check_chat_request(to_chat(raw, anthropic=_anthropic_only(state.config, raw), where=where))
        alias = body["model"]
        if body.get("stream") and _hub_tools(state.config, body):
            body["tool_loop_trace"] = "reasoning"  # the stream then says where each hub call happened (stream.py)
        REPORT_OUTPUT.set(True)  # this request's task only: hub tool outputs for the mcp_tool_result blocks
        answer = await run_chat(request, principal, body, started)
    except (HubError, ProviderError) as exc:
        return anthropic_error(where.mapped(exc))
    return AnthropicResponse(answer, alias, where)


async def count_tokens(request: Request) -> Response:
    """Exact from an Anthropic upstream, an estimate elsewhere (hub/api/messages/count_tokens.py)."""
    try:
        return await counting.count_tokens(request)
    except (HubError, ProviderError) as exc:
        return anthropic_error(exc)


def _hub_tools(config: Config, body: JSON) -> bool:
    """Whether the request may run hub tools: `mcp_servers` entries, or an alias with default servers."""
    routes = config.models.get(body["model"]) or ()
    return any(t.get("type") == "mcp" for t in body.get("tools") or ()) or bool(routes and routes[0].mcp_servers)


def _anthropic_only(config: Config, raw: Any) -> bool:
    """Whether every deployment of the requested alias and of every group it may fall back to (the `fallbacks` the
    request names, and the config's chains for the alias, of every error kind) is an Anthropic one."""
    if not isinstance(raw, dict):
        return False
    fallbacks: Any = raw.get("fallbacks")  # pyright: ignore[reportUnknownMemberType]
    model: Any = raw.get("model")  # pyright: ignore[reportUnknownMemberType]
    chains = [config.router.chain(model, kind) for kind in ("server", "context_window", "content_policy")] if (
        isinstance(model, str)) else []  # fmt: skip
    aliases: list[Any] = [model, *(fallbacks if isinstance(fallbacks, list) else ()), *(a for c in chains for a in c)]
    groups = [config.models.get(alias) if isinstance(alias, str) else None for alias in aliases]
    return all(groups) and all(route.deployment.provider == "anthropic" for routes in groups for route in routes or ())


def anthropic_error(exc: HubError | ProviderError) -> Response:
    """The error in Anthropic's shape; an upstream that is overloaded or unavailable is a 529 as Anthropic's own."""
    upstream = exc.upstream_status if isinstance(exc, ProviderError) else None
    status = error_status(exc.status_code, upstream) if isinstance(exc, ProviderError) else exc.status_code
    missing = isinstance(exc, AuthenticationError) and exc.code == "missing_api_key"
    return json_response(error_body(status, MISSING_KEY if missing else exc.message), status, exc.headers)


class AnthropicRoute:
    """A Messages endpoint as the route's ASGI app, without Starlette's error layer (whose handlers answer in
    OpenAI's shape): a HubError or ProviderError raised before the answer starts is rendered by `anthropic_error`,
    an HTTPException in Anthropic's shape, and any other exception is a logged 500 `api_error`. Once the answer
    started, or for a client that went away while its body was read, the app's middleware does as for every route."""

    def __init__(self, endpoint: Callable[[Request], Awaitable[Response]]) -> None:
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            response = await self.endpoint(Request(scope, receive, send))
            await response(scope, receive, tracking)
        except Exception as exc:
            if started or isinstance(exc, ClientDisconnect):
                raise
            if not isinstance(exc, (HubError, ProviderError, HTTPException)):
                logger.exception(
                    "unhandled error on %s %s", printable(scope.get("method")), printable(scope.get("path"))
                )
            await _failure(exc)(scope, receive, send)


def _failure(exc: Exception) -> Response:
    if isinstance(exc, (HubError, ProviderError)):
        return anthropic_error(exc)
    if isinstance(exc, HTTPException):
        return json_response(error_body(exc.status_code, exc.detail), exc.status_code, exc.headers)
    return json_response(error_body(500, CRASHED), 500)


class AnthropicResponse(Response):
    """Serves `inner` (a chat answer of any kind: JSON, SSE, keep-alive SSE) translated to the Messages API."""

    def __init__(self, inner: Response, model: str, where: Locations | None = None) -> None:
        self.inner = inner
        self.model = model
        self.where = where or Locations()
        """Where the chat body's messages came from: a failure after `run_chat` (a tool loop round's) names them."""
        self.status_code = inner.status_code
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        relay = _Relay(self.model, send, self.where)
        await self.inner(scope, receive, relay.send)


class _Relay:
    def __init__(self, model: str, send: Send, where: Locations) -> None:
        self.model = model
        self.where = where
        self._send = send
        self._start: Message = {}
        self._stream: EventTranslator | None = None
        self._body: list[bytes] = []

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self._start = message
            headers = dict(message.get("headers") or [])
            if message["status"] == 200 and headers.get(b"content-type", b"").startswith(b"text/event-stream"):
                self._stream = EventTranslator(self.model, self.where)
                await self._send({**message, "headers": _headers(message, None)})
            return
        if message["type"] != "http.response.body":
            await self._send(message)
        elif self._stream is not None:
            out = self._stream.feed(message.get("body", b""))
            if not message.get("more_body", False):
                out += self._stream.end()
            await self._send({**message, "body": out})
        else:
            self._body.append(message.get("body", b""))
            if not message.get("more_body", False):
                await self._answer()

    async def _answer(self) -> None:
        status, body = self._start["status"], _loads(b"".join(self._body))
        if status == 200:
            status, out = 200, to_message(body, self.model)
        elif status < 400:
            out = body
        else:
            status, out = from_openai_error(status, self.where.body(body))
        data = orjson.dumps(out)
        await self._send({**self._start, "status": status, "headers": _headers(self._start, len(data))})
        await self._send({"type": "http.response.body", "body": data})


def _loads(data: bytes) -> Any:
    try:
        return orjson.loads(data) if data else {}
    except orjson.JSONDecodeError:
        return {"error": {"message": data.decode(errors="replace")}}


def _headers(start: Message, length: int | None) -> list[tuple[bytes, bytes]]:
    kept = [(k, v) for k, v in start.get("headers") or [] if k.lower() not in (b"content-length", b"content-type")]
    if length is None:
        return [*kept, (b"content-type", b"text/event-stream; charset=utf-8")]
    return [*kept, (b"content-type", b"application/json"), (b"content-length", str(length).encode())]


class _Unserved:
    """Anthropic's error for what is not served under `/v1/messages`: another method on a served path (405 with
    `Allow: POST`), any other path, e.g. Message Batches (404). A served path with a trailing slash is redirected,
    as the router does for the other paths."""

    def __init__(self, status: int) -> None:
        self.status = status

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        path = request.url.path
        rest: str | None = request.path_params.get("rest")
        if rest is not None and rest.rstrip("/") in ("", "count_tokens"):
            response: Response = RedirectResponse(request.url.replace(path=path.rstrip("/")))
        else:
            reason = "Method Not Allowed" if self.status == 405 else "Not Found"
            body = error_body(self.status, f"{reason}: {request.method} {path}")
            response = json_response(body, self.status, {"Allow": "POST"} if self.status == 405 else None)
        await response(scope, receive, send)


ROUTES = [
    Route("/v1/messages", AnthropicRoute(messages), methods=["POST"]),
    Route("/v1/messages/count_tokens", AnthropicRoute(count_tokens), methods=["POST"]),
    Route("/v1/messages", _Unserved(405)),  # every other method (the router tries the POST routes first)
    Route("/v1/messages/count_tokens", _Unserved(405)),
    Route("/v1/messages/{rest:path}", _Unserved(404)),
]
