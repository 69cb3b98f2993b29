"""The app's last-resort error handling, over a real socket."""

from __future__ import annotations

import httpx2
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.app import create_app
from hub.config import parse_config
from tests.support.servers import serve_app


async def boom(request: Request) -> Response:
    raise RuntimeError("a bug")


def test_an_unexpected_error_is_a_500_with_request_id_and_the_connection_stays_usable() -> None:
    app = create_app(parse_config({}, {}), routes=[Route("/boom", boom)])
    with serve_app(app) as url, httpx2.Client(base_url=url) as client:
        crashed = client.get("/boom", headers={"x-request-id": "req-1", "origin": "http://ui.example"})
        after = client.get("/health/liveliness")
    assert crashed.status_code == 500
    assert crashed.json()["error"]["code"] == "internal_error"
    assert crashed.headers["x-request-id"] == "req-1"
    assert crashed.headers["access-control-allow-origin"] == "*"
    assert after.status_code == 200
