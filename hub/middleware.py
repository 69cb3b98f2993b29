"""Pure ASGI middleware (no BaseHTTPMiddleware: it costs a task and a memory stream per request).

`EdgeMiddleware` is the request id, CORS for the OpenAI-compatible API, the last-resort 500 and the answer to a request
ended by the shutdown (hub/ops/shutdown.py) in one layer; `CrashMiddleware` is the last two alone, which it puts inside
Starlette's CORSMiddleware for browser requests."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
import sys
import threading
import time

import orjson
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.ops import shutdown
from hub.ops.logs import printable

_CLIENT_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")  # fullmatch: "$" would let a final newline in
_RANDOM_CLEAR = ~((0xF << 76) | (0x3 << 62))
_V7_SET = (7 << 76) | (2 << 62)


def new_request_id() -> str:
    """A UUIDv7 (RFC 9562) in hex: 48 bits of Unix milliseconds, then 74 random bits around the version and variant.

    Time-ordered rather than uuid4's all-random, because the spend logs and tool calls index `request_id`: a random
    key lands on a random page of that index, so each insert reads and dirties another page, and the cost grows with
    the table. Inserting spend-log rows in batches of 500 into SQLite, CPU a row: a 330k-row table 29.5 us with
    uuid4 request ids, 7.7 us with these; a fresh table 11.7 and 7.3 us. Built as one integer, without a UUID object,
    from random bits drawn 409 ids at a time (`_random_bits`): 1.1 -> 0.7 us an id."""
    return "%032x" % ((time.time_ns() // 1_000_000) << 80 | _random_bits() & _RANDOM_CLEAR | _V7_SET)


_BATCH = 409
"""80-bit numbers drawn with one `os.urandom` call (4,090 bytes): the system call was most of an id's cost."""
_drawn = threading.local()
"""Each thread's numbers not used yet (apps served in threads of one process never share one)."""


def _random_bits() -> int:
    """80 bits from the operating system's CSPRNG, as `int.from_bytes(os.urandom(10))`."""
    pool: list[int] | None = getattr(_drawn, "pool", None)
    if not pool:
        raw = os.urandom(10 * _BATCH)
        pool = _drawn.pool = [int.from_bytes(raw[i : i + 10], "big") for i in range(0, len(raw), 10)]
    return pool.pop()


def _forget_drawn() -> None:
    """In a forked child: draw anew, or parent and child would make ids from the same numbers."""
    global _drawn
    _drawn = threading.local()


os.register_at_fork(after_in_child=_forget_drawn)


Header = tuple[bytes, bytes]
logger = logging.getLogger("toolhub")
_CRASH = orjson.dumps(
    {"error": {"message": "The gateway failed while handling this request.", "type": "server_error", "param": None,
               "code": "internal_error"}}
)  # fmt: skip
API_PREFIXES = ("/v1/", "/chat/", "/models", "/health/")
"""Where CORS applies: the OpenAI-compatible API (browser chat apps call `/v1` directly), never the MCP endpoints or
the admin endpoints (`/mcp`, `/sse`, `/key`, `/spend`, `/metrics`): a web page must not drive those."""


EXPOSED = [
    "x-request-id", "retry-after", "retry-after-ms", "x-litellm-cache-key", "x-litellm-model-group",
    "x-litellm-model-id", "x-litellm-model-api-base", "x-litellm-attempted-retries", "x-litellm-attempted-fallbacks",
    "x-toolhub-cache-hit", "x-toolhub-cost", "x-toolhub-dropped-params", "x-toolhub-dropped-tools",
    "x-toolhub-overhead-duration-ms", "x-toolhub-token-count",
]  # fmt: skip
"""The gateway's own response headers a browser app may read (`Access-Control-Expose-Headers`): without them only
the CORS-safelisted ones are readable, and a web client could not see a cache hit, the cost or the deployment used."""


class EdgeMiddleware:
    """Takes a sane `x-request-id` from the client or makes one (echoed on the response, kept in scope state); CORS on
    `API_PREFIXES`; an unexpected exception becomes a logged 500 in OpenAI's shape without closing the connection;
    a request the shutdown cancels (`drain`, which finds it by this method's code) is answered (`shutdown.answer`).

    The order is that of three middleware (request id outermost, the crash guard innermost: a 500 carries the other
    two's headers), with one scan of the request's headers, one `send` wrapper and one frame per request instead of
    three of each. A request without `Origin` (every SDK and server client) gets what CORSMiddleware adds then,
    `Vary: Origin`, without its header objects; a browser's goes through CORSMiddleware as before.
    """

    def __init__(self, app: ASGIApp, drain: shutdown.Drain | None = None) -> None:
        from starlette.middleware.cors import CORSMiddleware

        self.app = app
        self.drain = drain = drain or shutdown.Drain()
        drain.marks.add(EdgeMiddleware.__call__.__code__)
        self.cors = CORSMiddleware(
            CrashMiddleware(app, drain), allow_origins=["*"], allow_methods=["*"], allow_headers=["*"],
            expose_headers=EXPOSED,
        )  # fmt: skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid, origin = _scan(scope["headers"])
        scope.setdefault("state", {})["request_id"] = rid
        header = (b"x-request-id", rid.encode())
        api = scope["path"].startswith(API_PREFIXES)
        if api and origin:
            await self.cors(scope, receive, functools.partial(_with_id, send, header))
            return
        head: Message | None = None  # the response's start, once sent
        tail: Message | None = None  # the last piece of its body sent

        async def edge_send(message: Message) -> None:
            nonlocal head, tail
            if message["type"] == "http.response.start":
                head = message
                headers: list[Header] = list(message.get("headers") or ())
                if api:
                    _vary(headers)
                headers.append(header)
                message["headers"] = headers
            else:
                tail = message
            await send(message)

        try:
            await self.app(scope, receive, edge_send)
        except Exception:
            await _crashed(scope, edge_send, head is not None)
        except asyncio.CancelledError:
            if not self.drain.stopping:
                raise
            await shutdown.answer(scope, edge_send, head, tail)


def _scan(headers: list[Header]) -> tuple[str, bool]:
    """(the request id: the client's first `x-request-id` if sane, else a new one; whether there is an `Origin`)."""
    client, origin = None, False
    for name, value in headers:
        if name == b"x-request-id":
            client = value if client is None else client
        elif name == b"origin":
            origin = True
    if client is not None and _CLIENT_ID.fullmatch(candidate := client.decode("latin-1")):
        return candidate, origin
    return new_request_id(), origin


class CrashMiddleware:
    """The last resort: an unexpected exception becomes a logged 500 in OpenAI's shape, inside the request-id and
    CORS middleware (so the answer carries their headers) and without closing the client's connection; a request the
    shutdown cancels is answered (`shutdown.answer`)."""

    def __init__(self, app: ASGIApp, drain: shutdown.Drain | None = None) -> None:
        self.app = app
        self.drain = drain or shutdown.Drain()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head: Message | None = None
        tail: Message | None = None

        async def tracking_send(message: Message) -> None:
            nonlocal head, tail
            if message["type"] == "http.response.start":
                head = message
            else:
                tail = message
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            await _crashed(scope, send, head is not None)
        except asyncio.CancelledError:
            if not self.drain.stopping:
                raise
            await shutdown.answer(scope, send, head, tail)


def _vary(headers: list[Header]) -> None:
    """Add `Origin` to the `Vary` of `headers` as CORSMiddleware does (one `vary` header, merged)."""
    found = [i for i, (name, _) in enumerate(headers) if name == b"vary"]
    if not found:
        headers.append((b"vary", b"Origin"))
    else:  # as MutableHeaders.__setitem__: the first one takes the joined value, the others go
        headers[found[0]] = (b"vary", b", ".join([*(headers[i][1] for i in found), b"Origin"]))
        for i in reversed(found[1:]):
            del headers[i]


async def _with_id(send: Send, header: Header, message: Message) -> None:
    """`send`, with the request id `header` last on the response's headers."""
    if message["type"] == "http.response.start":
        message["headers"] = [*message.get("headers", ()), header]
    await send(message)


async def _crashed(scope: Scope, send: Send, started: bool) -> None:
    """Log the exception being handled; answer a 500, or re-raise if part of the answer is out already (all that is
    left then is to drop the connection). A client that left while its body was read is no failure: 499, no log."""
    if isinstance(sys.exc_info()[1], ClientDisconnect):
        if started:
            raise
        await send({"type": "http.response.start", "status": 499, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})
        return
    logger.exception("unhandled error on %s %s", printable(scope.get("method")), printable(scope.get("path")))
    if started:
        raise
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(_CRASH)).encode())]
    await send({"type": "http.response.start", "status": 500, "headers": headers})
    await send({"type": "http.response.body", "body": _CRASH})
