"""`/ui`: the admin console, served by the hub itself, working offline (every asset ships in `static/`).

Pages are rendered on the server with Jinja2 from the hub's own API (`hub.ui.api.call_api`); htmx (2.0.11, BSD-2)
turns links and forms into partial page loads and uPlot (1.6.32, MIT) draws the Overview charts.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from hub.state import HubState
from hub.storage import rollup
from hub.ui import keys, login, logs, mcp, models, overview, playground
from hub.ui.web import STATIC

ROUTES: list[BaseRoute] = [
    Route("/ui", overview.overview_page, methods=["GET"]),
    Route("/ui/", overview.overview_page, methods=["GET"]),
    Route("/ui/overview/series", overview.series, methods=["GET"]),
    Route("/ui/overview/top", overview.top_panel, methods=["GET"]),
    Route("/ui/login", login.login_form, methods=["GET"]),
    Route("/ui/login", login.login, methods=["POST"]),
    Route("/ui/logout", login.logout, methods=["POST"]),
    Route("/ui/keys", keys.keys_page, methods=["GET"]),
    Route("/ui/keys/create", keys.create_key, methods=["POST"]),
    Route("/ui/keys/update", keys.update_key, methods=["POST"]),
    Route("/ui/keys/{action}", keys.key_action, methods=["POST"]),
    Route("/ui/logs", logs.logs_page, methods=["GET"]),
    Route("/ui/models", models.models_page, methods=["GET"]),
    Route("/ui/models/test", models.test_model, methods=["POST"]),
    Route("/ui/models/health", models.check_all, methods=["POST"]),
    Route("/ui/mcp", mcp.mcp_page, methods=["GET"]),
    Route("/ui/mcp/call", mcp.call_tool, methods=["POST"]),
    Route("/ui/playground", playground.playground_page, methods=["GET"]),
    Route("/ui/api/v1/chat/completions", playground.chat, methods=["POST"]),
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
