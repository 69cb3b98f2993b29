"""hub/middleware.py's shortcuts: `EdgeMiddleware` answers a request without `Origin` itself (its headers must be
what Starlette's CORSMiddleware makes of them), and request ids are time-ordered UUIDs made without a UUID object."""

from __future__ import annotations

import os
import select
import signal
import time
import uuid
from typing import Any

import pytest
from starlette.middleware.cors import CORSMiddleware

from hub.middleware import EXPOSED, EdgeMiddleware, new_request_id

Headers = list[tuple[bytes, bytes]]


def answering(headers: Headers) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": list(headers)})
        await send({"type": "http.response.body", "body": b"{}"})

    return app


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


def crashing(after_start: bool) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if after_start:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("a bug")

    return app


async def sent(middleware: Any, request_headers: Headers, path: str = "/v1/chat/completions") -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    await middleware({"type": "http", "method": "POST", "path": path, "headers": request_headers}, receive, send)
    return messages


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
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/mcp"])
async def test_the_edge_layer_sends_the_headers_of_cors_then_the_request_id(
    response_headers: Headers, origin: bytes | None, path: str
) -> None:
    request = [(b"x-request-id", b"req-1")] + ([(b"origin", origin)] if origin else [])
    ours = (await sent(EdgeMiddleware(answering(response_headers)), request, path))[0]["headers"]
    inner = answering(response_headers)
    if path.startswith("/v1/"):
        inner = CORSMiddleware(inner, allow_origins=["*"], allow_methods=["*"], allow_headers=["*"],
                               expose_headers=EXPOSED)  # fmt: skip
    assert ours == [*(await sent(inner, request, path))[0]["headers"], (b"x-request-id", b"req-1")]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("request_headers", "kept"),
    [
        ([(b"x-request-id", b"req-1")], True),
        ([(b"x-request-id", b"no spaces allowed")], False),
        ([(b"x-request-id", b"req-1\n")], False),  # a final newline (a "$" regex let it in, into the logs)
        ([(b"x-request-id", b"bad id"), (b"x-request-id", b"req-2")], False),  # the first one counts
        ([], False),
    ],
)
async def test_the_edge_layer_keeps_a_sane_client_request_id_or_makes_one(request_headers: Headers, kept: bool) -> None:
    scope: dict[str, Any] = {"type": "http", "method": "GET", "path": "/v1/models", "headers": request_headers}
    messages: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await EdgeMiddleware(answering([]))(scope, None, send)  # pyright: ignore[reportArgumentType]
    rid = scope["state"]["request_id"]
    assert (b"x-request-id", rid.encode()) == messages[0]["headers"][-1]
    assert rid == "req-1" if kept else uuid.UUID(rid).version == 7


@pytest.mark.anyio
@pytest.mark.parametrize("origin", [None, b"https://chat.example"])
async def test_a_crash_before_the_answer_is_a_500_with_the_edge_headers(origin: bytes | None) -> None:
    request = [(b"x-request-id", b"req-1")] + ([(b"origin", origin)] if origin else [])
    start, body = await sent(EdgeMiddleware(crashing(after_start=False)), request)
    headers = dict(start["headers"])
    assert (start["status"], headers[b"x-request-id"]) == (500, b"req-1")
    assert headers[b"access-control-allow-origin" if origin else b"vary"] == (b"*" if origin else b"Origin")
    assert b'"code":"internal_error"' in body["body"]


@pytest.mark.anyio
async def test_a_crash_after_the_answer_started_is_raised_to_drop_the_connection() -> None:
    with pytest.raises(RuntimeError, match="a bug"):
        await sent(EdgeMiddleware(crashing(after_start=True)), [])


@pytest.mark.anyio
async def test_the_edge_layer_passes_other_scopes_through() -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope)

    await EdgeMiddleware(app)({"type": "lifespan"}, None, None)  # pyright: ignore[reportArgumentType]
    assert seen == [{"type": "lifespan"}]


def test_a_forked_child_makes_ids_from_random_bits_of_its_own() -> None:
    new_request_id()  # this process has numbers drawn and not used yet
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id's random part, to the parent
        os.write(write, new_request_id()[13:].encode())
        os._exit(0)
    os.close(write)
    ready: list[int] = []
    try:  # bounded: a child stuck after a fork in a threaded process must fail the test, not hang the run
        ready, _, _ = select.select([read], [], [], 30)
        child = os.read(read, 64).decode() if ready else ""
    finally:
        os.close(read)
        if not ready:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert len(child) == 19 and child != new_request_id()[13:]
