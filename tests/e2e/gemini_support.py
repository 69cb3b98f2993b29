"""Helpers for the Gemini end-to-end tests: gateway config over the fake Gemini, and a loopback image server."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.gemini_upstream import API_KEY

MASTER_KEY = "sk-toolhub-gemini-test"
# alias -> upstream model; the fake picks its behaviour from the name, Gemini 3 names enforce thought signatures
BEHAVIOURS = {
    "g-text": "gemini-2.5-text", "g-text-20": "gemini-2.5-text-20", "g3-text": "gemini-3-text",
    "g-tools": "gemini-2.5-tools", "g3-tools": "gemini-3-tools", "g3-agent": "gemini-3-agent",
    "g3-ids": "gemini-3-ids", "g-first": "gemini-2.5-first", "g-noargs": "gemini-3-noargs",
    "g3-thinking": "gemini-3-thinking", "g-echo": "gemini-2.5-echo", "g-json": "gemini-2.5-json",
    "g-blocked": "gemini-2.5-blocked", "g-safety": "gemini-2.5-safety", "g-maxtokens": "gemini-2.5-maxtokens",
    "g-malformed": "gemini-3-malformed", "g-empty": "gemini-2.5-empty", "g-midstream": "gemini-2.5-midstream",
    "g-cut": "gemini-2.5-cut", "g-slow": "gemini-2.5-slow", "g-huge": "gemini-3-huge",
    **{f"g-error-{code}": f"gemini-2.5-error-{code}" for code in ("400", "400p", "403", "404", "429", "500", "503",
                                                                  "504")},
}  # fmt: skip

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
PNG_SHA = hashlib.sha256(PNG).hexdigest()[:16]
TOO_LARGE = 21 * 1024 * 1024


def gateway_config(upstream: str, *, key: str = API_KEY) -> dict[str, Any]:
    # the image server of these tests is on 127.0.0.1, which the gateway refuses to fetch unless allowed
    models = [{"model_name": alias, "litellm_params": {"model": f"gemini/{model}", "api_base": upstream,
                                                       "api_key": "os.environ/FAKE_GEMINI_KEY",
                                                       "allow_private_image_urls": True}}
              for alias, model in BEHAVIOURS.items()]  # fmt: skip
    models.append({"model_name": "g-public-images-only", "litellm_params": {
        "model": "gemini/gemini-2.5-echo", "api_base": upstream, "api_key": "os.environ/FAKE_GEMINI_KEY"}})  # fmt: skip
    models.append({"model_name": "g-badkey", "litellm_params": {"model": "gemini/gemini-2.5-text",
                                                                "api_base": upstream, "api_key": "wrong"}})  # fmt: skip
    return {"model_list": models, "general_settings": {"master_key": MASTER_KEY}}


async def _redirect(request: Request) -> Response:
    return Response(status_code=302, headers={"location": "/cat.png"})


async def _png(request: Request) -> Response:
    return Response(PNG, media_type="image/png")


async def _untyped(request: Request) -> Response:
    return Response(PNG, media_type="application/octet-stream")  # sniffed from the bytes


async def _huge(request: Request) -> Response:
    async def body() -> AsyncIterator[bytes]:
        block = b"\0" * (1 << 20)
        for _ in range(TOO_LARGE >> 20):
            yield block

    return StreamingResponse(body(), media_type="image/png", headers={"content-length": str(TOO_LARGE)})


async def _html(request: Request) -> Response:
    return Response(b"<html>login</html>", media_type="text/html")


def image_app() -> Starlette:
    """Serves /cat.png, /untyped, /huge.png (over the 20 MB cap), /page.html; anything else is a 404."""
    return Starlette(routes=[Route("/cat.png", _png), Route("/untyped", _untyped), Route("/huge.png", _huge),
                             Route("/page.html", _html), Route("/redirect-to-cat", _redirect)])  # fmt: skip
