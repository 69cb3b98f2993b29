"""hub/middleware.py's shortcuts: `ApiCORSMiddleware` answers a request without `Origin` itself (its headers must
be what Starlette's CORSMiddleware makes of them), and request ids are time-ordered UUIDs made without a UUID object."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from starlette.middleware.cors import CORSMiddleware

from hub.middleware import ApiCORSMiddleware, new_request_id

Headers = list[tuple[bytes, bytes]]


def answering(headers: Headers) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": list(headers)})
        await send({"type": "http.response.body", "body": b"{}"})

    return app


async def sent_headers(middleware: Any, request_headers: Headers) -> Headers:
    messages: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": request_headers}
    await middleware(scope, receive, send)
    return messages[0]["headers"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "response_headers",
    [
        [(b"content-type", b"application/json")],
        [(b"vary", b"Accept"), (b"x-a", b"1")],
        [(b"vary", b"Accept"), (b"x-a", b"1"), (b"vary", b"Cookie"), (b"x-b", b"2")],
    ],
)
@pytest.mark.parametrize("origin", [None, b"https://chat.example"])
async def test_the_headers_are_corsmiddlewares(response_headers: Headers, origin: bytes | None) -> None:
    request = [(b"authorization", b"Bearer x")] + ([(b"origin", origin)] if origin else [])
    ours = await sent_headers(ApiCORSMiddleware(answering(response_headers)), request)
    starlettes = CORSMiddleware(answering(response_headers), allow_origins=["*"], allow_methods=["*"],
                                allow_headers=["*"], expose_headers=["x-request-id"])  # fmt: skip
    assert ours == await sent_headers(starlettes, request)


def test_a_new_request_id_is_a_time_ordered_version_7_uuid_in_hex() -> None:
    before = time.time_ns() // 1_000_000
    ids = [new_request_id() for _ in range(1000)]
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == 1000
    for rid in ids:
        parsed = uuid.UUID(rid)
        assert (len(rid), parsed.hex, parsed.version, parsed.variant) == (32, rid, 7, uuid.RFC_4122)
        assert before <= parsed.int >> 80 <= after  # Unix milliseconds first: ids made later sort after
    assert [rid[:12] for rid in ids] == sorted(rid[:12] for rid in ids)
