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
    app = create_app(parse_config({}, {}), routes=[Route("/v1/boom", boom)])
    with serve_app(app) as url, httpx2.Client(base_url=url) as client:
        crashed = client.get("/v1/boom", headers={"x-request-id": "req-1", "origin": "http://ui.example"})
        after = client.get("/health/liveliness")
    assert crashed.status_code == 500
    assert crashed.json()["error"]["code"] == "internal_error"
    assert crashed.headers["x-request-id"] == "req-1"
    assert crashed.headers["access-control-allow-origin"] == "*"
    assert after.status_code == 200


def test_cors_covers_the_openai_api_but_not_mcp_or_admin_endpoints() -> None:
    app = create_app(parse_config({}, {}), routes=[Route("/v1/boom", boom)])
    preflight = {"origin": "https://chat.example", "access-control-request-method": "POST",
                 "access-control-request-headers": "authorization"}  # fmt: skip
    with serve_app(app) as url, httpx2.Client(base_url=url) as client:
        api = client.options("/v1/chat/completions", headers=preflight)
        mcp = client.options("/mcp/tools/call", headers=preflight)
        admin = client.options("/key/generate", headers=preflight)
    assert api.status_code == 200 and api.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-origin" not in mcp.headers
    assert "access-control-allow-origin" not in admin.headers


def test_a_browser_app_may_read_the_gateways_own_response_headers() -> None:
    app = create_app(parse_config({}, {}), routes=[Route("/v1/boom", boom)])
    with serve_app(app) as url, httpx2.Client(base_url=url) as client:
        answer = client.get("/v1/models", headers={"origin": "https://chat.example"})
    exposed = {name.strip() for name in answer.headers["access-control-expose-headers"].split(",")}
    assert {
        "x-request-id",
        "x-litellm-cache-key",
        "x-toolhub-cache-hit",
        "x-toolhub-cost",
        "retry-after",
        "retry-after-ms",
    } <= exposed
