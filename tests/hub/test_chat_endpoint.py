"""`ChatEndpoint`: the chat route as a plain ASGI app answers errors as the function endpoint did, through the app's
own exception handling (Starlette wraps a function endpoint in a second layer of it)."""

from __future__ import annotations

import httpx2
import pytest
from starlette.routing import BaseRoute, Route

from hub.app import create_app
from hub.config import parse_config
from hub.gateway.chat import chat_completions
from hub.gateway.endpoint import ChatEndpoint
from tests.support.servers import serve_app

BODIES = [b"{not json", b'{"messages": []}', b'{"model": "nope", "messages": [{"role": "user", "content": "hi"}]}']


@pytest.mark.parametrize("body", BODIES)
def test_errors_are_answered_as_by_the_function_endpoint(body: bytes) -> None:
    routes: list[BaseRoute] = [Route("/v1/plain", ChatEndpoint(), methods=["POST"]),
                               Route("/v1/wrapped", chat_completions, methods=["POST"])]  # fmt: skip
    app = create_app(parse_config({"general_settings": {"master_key": "sk-m"}}, {}), routes=routes)
    headers = {"authorization": "Bearer sk-m", "content-type": "application/json", "x-request-id": "req-1"}
    with serve_app(app) as url, httpx2.Client(base_url=url) as client:
        plain, wrapped = (client.post(path, content=body, headers=headers) for path in ("/v1/plain", "/v1/wrapped"))
        wrong_method = client.get("/v1/plain")
    assert plain.status_code == wrapped.status_code >= 400
    assert plain.json() == wrapped.json()
    assert {**plain.headers, "date": ""} == {**wrapped.headers, "date": ""}
    assert wrong_method.status_code == 405
