"""The layers a chat request goes through: the app's own middleware (one edge layer) and the chat route as a plain
ASGI app, past Starlette's outer error layer, exception middleware and router (`ChatFastPath`)."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from starlette.routing import BaseRoute, Route
from starlette.types import Message, Receive, Scope, Send

from hub.app import ChatFastPath, create_app
from hub.config import parse_config
from hub.gateway.chat import chat_completions
from hub.gateway.endpoint import ChatEndpoint
from hub.middleware import EdgeMiddleware
from tests.support.servers import serve_app


def test_chat_goes_through_one_edge_layer_and_no_second_error_layer() -> None:
    app = create_app(parse_config({}, {}))
    layers = [getattr(m.cls, "__name__", "") for m in app.user_middleware]
    assert layers == ["AccessLogMiddleware", EdgeMiddleware.__name__]
    chat = [r for r in app.routes if isinstance(r, Route) and r.path.endswith("/chat/completions")]
    assert len(chat) == 2 and all(isinstance(r.app, ChatEndpoint) for r in chat)


BODIES = [b"{not json", b'{"messages": []}', b'{"model": "nope", "messages": [{"role": "user", "content": "hi"}]}']


@pytest.mark.parametrize("body", BODIES)
def test_chat_posts_skip_the_router_and_exception_layers_and_are_answered_the_same(body: bytes) -> None:
    wrapped: list[BaseRoute] = [Route("/v1/wrapped", chat_completions, methods=["POST"])]  # the whole stack
    app = create_app(parse_config({"general_settings": {"master_key": "sk-m"}}, {}), routes=wrapped)
    headers = {"authorization": "Bearer sk-m", "content-type": "application/json", "x-request-id": "req-1"}
    with serve_app(app) as url, httpx2.Client(base_url=url) as client:
        fast, slow = (
            client.post(path, content=body, headers=headers) for path in ("/v1/chat/completions", "/v1/wrapped")
        )
        browser = client.post("/chat/completions", content=body, headers={**headers, "origin": "https://a.example"})
        wrong_method = client.get("/v1/chat/completions")
    stack = app.middleware_stack
    assert isinstance(stack, ChatFastPath) and sorted(stack.chat) == ["/chat/completions", "/v1/chat/completions"]
    assert fast.status_code == slow.status_code == browser.status_code >= 400
    assert fast.json() == slow.json() == browser.json()
    assert {**fast.headers, "date": ""} == {**slow.headers, "date": ""}
    assert browser.headers["access-control-allow-origin"] == "*" and browser.headers["x-request-id"] == "req-1"
    assert wrong_method.status_code == 405


@pytest.mark.anyio
async def test_the_fast_path_names_the_route_as_the_router_does_and_leaves_other_requests_to_the_app() -> None:
    route = Route("/v1/chat/completions", ChatEndpoint(), methods=["POST"])
    seen: list[tuple[str, Any]] = []

    async def chat(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(("chat", scope.get("route")))

    async def rest(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(("rest", scope.get("route")))

    fast = ChatFastPath(rest, {"/v1/chat/completions": (route, chat)})
    for method, path, kind in (("POST", "/v1/chat/completions", "http"), ("GET", "/v1/chat/completions", "http"),
                               ("POST", "/v1/chat/completions/", "http"), ("POST", "/v1/models", "http"),
                               ("POST", "/v1/chat/completions", "websocket")):  # fmt: skip
        await fast({"type": kind, "method": method, "path": path}, _receive, _send)
    assert seen == [("chat", route), ("rest", None), ("rest", None), ("rest", None), ("rest", None)]


async def _receive() -> Message:
    return {"type": "http.disconnect"}


async def _send(message: Message) -> None:
    return None


class _Odd(Exception):
    pass


async def _odd_handler(request: Any, exc: Exception) -> Any:
    raise AssertionError("not called")


@pytest.mark.parametrize("change", ["max_body_size", "handler"])
def test_an_app_with_a_layer_the_chat_endpoint_does_not_stand_in_for_serves_chat_through_the_whole_stack(
    change: str,
) -> None:
    app = create_app(parse_config({}, {}))
    if change == "max_body_size":
        app.max_body_size = 10
    else:
        app.add_exception_handler(_Odd, _odd_handler)
    assert not isinstance(app.build_middleware_stack(), ChatFastPath)
    assert isinstance(create_app(parse_config({}, {})).build_middleware_stack(), ChatFastPath)


def test_an_http_exception_on_the_fast_path_is_answered_as_the_apps_handler_answers_it() -> None:
    from starlette.exceptions import HTTPException

    async def refusing(request: Any) -> Any:
        raise HTTPException(409, "Busy")

    app = create_app(parse_config({}, {}))
    route = next(r for r in app.routes if isinstance(r, Route) and r.path == "/v1/chat/completions")
    app.router.routes[app.routes.index(route)] = Route(route.path, ChatEndpoint(refusing), methods=["POST"])
    with serve_app(app) as url, httpx2.Client(base_url=url) as client:
        answer = client.post("/v1/chat/completions", content=b"{}")
    assert isinstance(app.middleware_stack, ChatFastPath)
    assert answer.status_code == 409
    assert answer.json() == {"error": {"message": "Busy: POST /v1/chat/completions", "type": "invalid_request_error",
                                       "param": None, "code": None}}  # fmt: skip
