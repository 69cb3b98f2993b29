"""The body reader on every chat request (hit or miss): read straight off the ASGI channel, bounded, and kept where
Starlette keeps it. (Here because the cache's hit path is what it was made cheaper for; hub/gateway/requests.py.)"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from starlette.requests import ClientDisconnect, Request

from hub.errors import BadRequest, PayloadTooLarge
from hub.gateway.requests import read_json_body

pytestmark = pytest.mark.anyio


def request(messages: list[dict[str, Any]], headers: list[tuple[bytes, bytes]] | None = None) -> Request:
    pending = list(messages)

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": headers or []}
    receive_fn: Callable[[], Awaitable[Any]] = receive
    return Request(scope, receive_fn)


def part(body: bytes, more: bool) -> dict[str, Any]:
    return {"type": "http.request", "body": body, "more_body": more}


async def test_a_body_in_several_parts_is_joined_parsed_and_still_readable_from_the_request() -> None:
    req = request([part(b'{"model": "m", ', True), part(b"", True), part(b'"messages": []}', False)])
    assert await read_json_body(req, 1_000) == {"model": "m", "messages": []}
    assert await req.body() == b'{"model": "m", "messages": []}'
    assert await read_json_body(req, 1_000) == {"model": "m", "messages": []}  # read again: the kept bytes


async def test_a_body_over_the_limit_is_refused_as_it_arrives_even_without_a_declared_length() -> None:
    with pytest.raises(PayloadTooLarge):
        await read_json_body(request([part(b"x" * 600, True), part(b"x" * 600, False)]), 1_000)
    with pytest.raises(PayloadTooLarge):
        await read_json_body(request([part(b"{}", False)], [(b"content-length", b"5000")]), 1_000)


async def test_a_client_gone_mid_body_is_a_disconnect_and_bad_json_a_400() -> None:
    with pytest.raises(ClientDisconnect):
        await read_json_body(request([part(b'{"model"', True)]), 1_000)
    with pytest.raises(BadRequest) as caught:
        await read_json_body(request([part(b'{"model"', False)]), 1_000)
    assert caught.value.code == "invalid_json"
