"""The layers a chat request goes through: one edge middleware, and the chat route as a plain ASGI app."""

from __future__ import annotations

from starlette.routing import Route

from hub.app import create_app
from hub.config import parse_config
from hub.gateway.chat import ChatEndpoint
from hub.middleware import EdgeMiddleware


def test_chat_goes_through_one_edge_layer_and_no_second_error_layer() -> None:
    app = create_app(parse_config({}, {}))
    layers = [getattr(m.cls, "__name__", "") for m in app.user_middleware]
    assert layers == ["AccessLogMiddleware", EdgeMiddleware.__name__]
    chat = [r for r in app.routes if isinstance(r, Route) and r.path.endswith("/chat/completions")]
    assert len(chat) == 2 and all(isinstance(r.app, ChatEndpoint) for r in chat)
