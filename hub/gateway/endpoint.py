"""`chat_completions` as a plain ASGI app (`ChatEndpoint`), so that `hub.app.ChatFastPath` can serve it past Starlette's
error layers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from hub.errors import HubError, error_response, http_error_response
from hub.gateway.chat import chat_completions
from providers.base import ProviderError


class ChatEndpoint:
    """`chat_completions` as a plain ASGI app, for `Route(path, ChatEndpoint(), methods=["POST"])`: not wrapped in
    Starlette's second exception-handling layer for function endpoints (~3 us of CPU a cache hit). It answers the
    exceptions the app has handlers for (`hub.app.CHAT_HANDLED`) as those handlers would, so it can be served past
    them (`hub.app.ChatFastPath`). `handler` is `chat_completions` but in tests."""

    def __init__(self, handler: Callable[[Request], Awaitable[Response]] = chat_completions) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            response = await self.handler(Request(scope, receive, send))
        except (HubError, ProviderError) as exc:
            response = error_response(exc)
        except HTTPException as exc:  # raised by nothing on this path today
            response = http_error_response(exc, scope["method"], scope["path"])
        await response(scope, receive, send)
