"""Playground: pick a model, write, press "Send"; the browser streams `/v1/chat/completions` through the session.

With hub tools (ticked servers, or an alias's default ones) the request asks for `tool_loop_trace: reasoning`, and the
page draws each call and its result from the chunks' `toolhub_trace` events as they come (hub/loop/trace.py).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from hub.errors import UnsupportedMediaType, error_response
from hub.state import hub_state
from hub.ui.api import call_api, proxy
from hub.ui.session import Session
from hub.ui.web import page, render


@page
async def playground_page(request: Request, session: Session) -> Response:
    models = await call_api(request, session, "GET", "/v1/models")
    tools = await call_api(request, session, "GET", "/mcp/tools/list")
    servers = sorted(tools.body["servers"]) if tools.ok else []
    routes = hub_state(request).config.models
    with_tools = {alias for alias, group in routes.items() if any(route.mcp_servers for route in group)}
    return render(request, "playground.html", session, servers=servers, with_tools=with_tools,
                  models=[m["id"] for m in models.body["data"]] if models.ok else [])  # fmt: skip


class _Relayed(Response):
    """The API's own answer to the browser's request, streamed through unchanged."""

    def __init__(self, request: Request, session: Session, path: str) -> None:
        super().__init__()
        self.request, self.session, self.path = request, session, path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await proxy(self.request, self.session, self.path, receive, send)


@page
async def chat(request: Request, session: Session) -> Response:
    """The browser's chat request, relayed to `/v1`: JSON only (the playground sends nothing else), refused in
    OpenAI's shape otherwise."""
    if not is_json(request.headers.get("content-type", "")):
        message = "The playground relays JSON only: send 'Content-Type: application/json'."
        return error_response(UnsupportedMediaType(message, code="unsupported_media_type"))
    return _Relayed(request, session, "/v1/chat/completions")


def is_json(content_type: str) -> bool:
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))
