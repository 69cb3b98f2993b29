"""`/ui`: the admin console, served by the hub itself, working offline (every asset ships in `static/`).

Pages are rendered on the server with Jinja2 from the hub's own API (`hub.ui.api.call_api`); htmx (2.0.11, BSD-2)
turns links and forms into partial page loads and uPlot (1.6.32, MIT) draws the Overview charts.

A page's module is imported by its first request (`_page`): a worker whose console is never opened does not carry
the console's modules (issue 17, RSS).
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from hub.state import HubState
from hub.storage import rollup

Endpoint = Callable[[Request], Awaitable[Response]]
STATIC = Path(__file__).parent / "static"


def _page(module: str, name: str) -> Endpoint:
    """The endpoint `hub.ui.<module>.<name>`, imported by its first request."""

    async def endpoint(request: Request) -> Response:
        handler: Endpoint = getattr(importlib.import_module(f"hub.ui.{module}"), name)
        return await handler(request)

    endpoint.__name__ = endpoint.__qualname__ = name
    return endpoint


ROUTES: list[BaseRoute] = [
    Route("/ui", _page("overview", "overview_page"), methods=["GET"]),
    Route("/ui/", _page("overview", "overview_page"), methods=["GET"]),
    Route("/ui/overview/series", _page("overview", "series"), methods=["GET"]),
    Route("/ui/overview/top", _page("overview", "top_panel"), methods=["GET"]),
    Route("/ui/login", _page("login", "login_form"), methods=["GET"]),
    Route("/ui/login", _page("login", "login"), methods=["POST"]),
    Route("/ui/logout", _page("login", "logout"), methods=["POST"]),
    Route("/ui/keys", _page("keys", "keys_page"), methods=["GET"]),
    Route("/ui/keys/create", _page("keys", "create_key"), methods=["POST"]),
    Route("/ui/keys/update", _page("keys", "update_key"), methods=["POST"]),
    Route("/ui/keys/{action}", _page("keys", "key_action"), methods=["POST"]),
    Route("/ui/logs", _page("logs", "logs_page"), methods=["GET"]),
    Route("/ui/models", _page("models", "models_page"), methods=["GET"]),
    Route("/ui/models/test", _page("models", "test_model"), methods=["POST"]),
    Route("/ui/models/health", _page("models", "check_all"), methods=["POST"]),
    Route("/ui/mcp", _page("mcp", "mcp_page"), methods=["GET"]),
    Route("/ui/mcp/call", _page("mcp", "call_tool"), methods=["POST"]),
    Route("/ui/playground", _page("playground", "playground_page"), methods=["GET"]),
    Route("/ui/api/v1/chat/completions", _page("playground", "chat"), methods=["POST"]),
    Mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static"),
]


def ui_extension(
    interval: float = rollup.INTERVAL,
) -> Callable[[HubState], contextlib.AbstractAsyncContextManager[None]]:
    """The extension for `create_app` (after the accounting one, which opens the store): folds new spend logs into
    the console's rollup every `interval` seconds (hub/storage/rollup.py)."""

    @contextlib.asynccontextmanager
    async def extension(state: HubState) -> AsyncIterator[None]:
        store = state.extras.get("store")
        if store is None:
            yield
            return
        async with rollup.running(store, interval):
            yield

    return extension
