"""The app factory: routes, middleware, error rendering, and the lifespan that owns every resource."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from hub.accounts.auth import MasterKeyAuth
from hub.cache.service import open_cache
from hub.config import Config
from hub.errors import HubError, NotFound, error_response, http_error_response, json_response
from hub.gateway.endpoint import ChatEndpoint
from hub.gateway.routing import ModelRouter
from hub.health import liveliness, readiness
from hub.middleware import EdgeMiddleware
from hub.ops import retention, shutdown, tracing
from hub.ops.access import AccessLogMiddleware, instrument
from hub.ops.reload import reload_endpoint, reloading
from hub.router.health import health_endpoint
from hub.state import HubState, authenticate, hub_state
from providers._http import HttpPool
from providers.base import ProviderError

Extension = Callable[[HubState], contextlib.AbstractAsyncContextManager[None]]
"""A later layer (MCP hub, store) that opens its resources inside the app lifespan and registers itself in state."""


async def list_models(request: Request) -> Response:
    state = hub_state(request)
    principal = await authenticate(request)
    created = state.extras["started_at"]
    data = [
        {"id": alias, "object": "model", "created": created, "owned_by": routes[0].deployment.provider}
        for alias, routes in state.config.models.items()
        if principal.may_use_model(alias)
    ]
    return json_response({"object": "list", "data": data})


async def get_model(request: Request) -> Response:
    state = hub_state(request)
    principal = await authenticate(request)
    alias = request.path_params["model"]
    routes = state.config.models.get(alias)
    if routes is None or not principal.may_use_model(alias):
        raise NotFound(f"The model '{alias}' does not exist.", code="model_not_found", param="model")
    owner = routes[0].deployment.provider
    return json_response({"id": alias, "object": "model", "created": state.extras["started_at"], "owned_by": owner})


async def _hub_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HubError | ProviderError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return http_error_response(exc, request.method, request.url.path)


def _retention(config: Config, state: HubState) -> contextlib.AbstractAsyncContextManager[None]:
    """The spend-log retention task (hub/ops/retention.py), when a period is set and a store is open."""
    store = state.extras.get("store")
    if config.spend_logs_retention is None or store is None:
        return contextlib.nullcontext()
    return retention.running(store, config.spend_logs_retention, config.spend_logs_retention_interval)


CHAT_PATHS = ("/v1/chat/completions", "/chat/completions")
CHAT_HANDLED = frozenset((HubError, ProviderError, HTTPException))
"""The exceptions `ChatEndpoint` answers as the app's handlers do; an app with a handler for anything else (or
Starlette's `max_body_size`) serves chat through the whole stack."""


class HubApp(Starlette):
    """Starlette, with `POST` chat completions dispatched past three layers they do not use (`ChatFastPath`)."""

    def build_middleware_stack(self) -> ASGIApp:
        if self.max_body_size is not None or not set(self.exception_handlers) <= CHAT_HANDLED:
            return super().build_middleware_stack()  # a layer the chat endpoint does not stand in for: no shortcut
        chat: dict[str, tuple[Route, ASGIApp]] = {}
        for route in self.routes:
            if isinstance(route, Route) and route.path in CHAT_PATHS and isinstance(route.app, ChatEndpoint):
                app: ASGIApp = route.app
                for cls, args, kwargs in reversed(self.user_middleware):
                    app = cls(app, *args, **kwargs)
                chat[route.path] = (route, app)
        return ChatFastPath(super().build_middleware_stack(), chat)


class ChatFastPath:
    """`POST /v1/chat/completions` (and `/chat/completions`) through the app's own middleware straight to the chat
    endpoint; every other request through the whole Starlette stack.

    What the chat request skips, it does not need: Starlette's outer error layer (`ServerErrorMiddleware`: the edge
    middleware already turns a crash into a logged 500), its `ExceptionMiddleware` (`ChatEndpoint` answers the
    gateway's errors as the app's handlers do) and the router (the path and method are known; `scope["route"]` is
    set as the router sets it, for the tracing middleware's span name). Each of the three costs a frame and, the
    first two, a `send` wrapper per request: ~5 us of CPU of a cache hit's ~60 in process. A request the router
    would answer otherwise (another method: 405; a trailing slash; a root path) goes the whole way."""

    def __init__(self, app: ASGIApp, chat: dict[str, tuple[Route, ASGIApp]]) -> None:
        self.app = app
        self.chat = chat

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            found = self.chat.get(scope["path"])
            if found is not None:
                scope["route"] = found[0]
                await found[1](scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(
    config: Config, *, extensions: list[Extension] | None = None, routes: list[BaseRoute] | None = None
) -> Starlette:
    """Build the ASGI app; nothing is opened until the lifespan runs."""
    otel = tracing.from_settings(config.otel)  # None when tracing is off
    drain = shutdown.Drain(config.shutdown_grace_seconds)  # the requests in flight, ended as the grace runs out

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool = HttpPool()
        router = ModelRouter.from_config(config, pool)  # hub/router: retries, cooldowns, fallbacks
        state = HubState(config=config, pool=pool, router=router, auth=MasterKeyAuth(config.master_key))
        state.extras["started_at"] = int(time.time())
        app.state.hub = state
        try:
            async with contextlib.AsyncExitStack() as stack:
                stack.enter_context(drain.watching())  # SIGTERM/SIGINT: the shutdown's grace period begins
                await stack.enter_async_context(tracing.running(otel))  # first opened, last closed (flushes)
                if config.cache is not None:  # the response cache; the chat path checks for it once per request
                    state.extras["cache"] = await stack.enter_async_context(open_cache(config.cache))
                for extension in extensions or ():
                    await stack.enter_async_context(extension(state))
                if config.access_log != "off":
                    state.auth, state.usage = instrument(state.auth, state.usage)
                await stack.enter_async_context(_retention(config, state))
                await stack.enter_async_context(reloading(state))  # runs the router; SIGHUP, POST /config/reload
                yield
        finally:
            await pool.aclose()

    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        HubError: _hub_error,
        ProviderError: _hub_error,
        HTTPException: _http_error,
    }
    return HubApp(
        routes=[
            Route("/v1/chat/completions", ChatEndpoint(), methods=["POST"]),  # ASGI: no second error layer
            Route("/chat/completions", ChatEndpoint(), methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/models", list_models, methods=["GET"]),
            Route("/v1/models/{model:path}", get_model, methods=["GET"]),
            Route("/health/liveliness", liveliness, methods=["GET"]),
            Route("/health/liveness", liveliness, methods=["GET"]),
            Route("/health/readiness", readiness, methods=["GET"]),
            Route("/health", health_endpoint, methods=["GET"]),  # hub/router/health.py: calls every deployment
            Route("/config/reload", reload_endpoint, methods=["POST"]),
            *(routes or ()),
        ],
        middleware=[
            *tracing.app_middleware(otel),  # outermost: the server span covers the whole request
            *([] if config.access_log == "off" else [Middleware(AccessLogMiddleware, mode=config.access_log)]),
            # request id, CORS on the API paths, the last-resort 500, requests ended by the shutdown (one layer)
            Middleware(EdgeMiddleware, drain=drain),
        ],
        exception_handlers=handlers,
        lifespan=lifespan,
    )
