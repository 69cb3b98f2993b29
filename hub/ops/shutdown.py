"""The end of the shutdown grace period: requests still running then get an answer in their API's own shape.

`toolhub serve` gives in-flight requests `shutdown_grace_seconds` after SIGTERM or SIGINT (uvicorn's
`timeout_graceful_shutdown`, which hub/cli.py sets to the setting rounded up). At that deadline uvicorn cancels what
still runs and answers each request that has not started its response with a plain-text 500 and a traceback in the
log; a stream is cut without an end. So the gateway ends them itself `MARGIN` seconds before: `Drain.end` cancels
each request's task, and the edge middleware (hub/middleware.py), where the cancellation arrives, answers with
`answer` below. A request's task is found then, among the loop's tasks, by the edge middleware's frame in the chain of
coroutines it awaits: keeping each request's task in a set as it starts cost ~0.6 us a request (mostly
`asyncio.current_task()`, a Python function on 3.11), for something needed once, at shutdown.

* no response started: 503 with the API's error body (`x-should-retry: true`: the request was not served; another
  replica, or this one restarted, can serve it). OpenAI's shape, except `/v1/messages` (Anthropic's, 529
  `overloaded_error` as for any unavailable upstream there) and the MCP endpoints (a JSON-RPC error);
* a stream started: its final error event, as for a failure after a stream has started (README: `data: {"error":
  ...}` on the OpenAI API, an Anthropic `error` event, a Responses `error` event), then the stream ends. Other
  streams (MCP's) just end.

The requests' own accounting runs as for any cancellation (each has its spend-log row), and uvicorn finds no task left
to cancel, so it logs no traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import signal
import weakref
from collections.abc import Callable, Iterator
from types import CodeType, FrameType
from typing import Any

import orjson
from starlette.types import Message, Scope, Send

from hub.api.messages.response import error_body, error_status
from hub.api.sse import named
from hub.errors import ServiceUnavailable, stream_error_event

logger = logging.getLogger("toolhub")
MARGIN = 0.5
"""Seconds before uvicorn's deadline at which the gateway ends the requests still running: time for their accounting
and last bytes. uvicorn's deadline is at least 0.1 s after the signal plus the rounded-up grace."""
MESSAGE = "the gateway shut down: shutdown_grace_seconds ran out"
"""The cancellation's message (`CancelledError.args`): how code below the middleware can tell this from a client
that left (`is_shutdown`)."""
CODE = "server_shutting_down"
TEXT = ("The gateway is shutting down, and this request was still running when its shutdown grace period "
        "(shutdown_grace_seconds) ran out. Send it again.")  # fmt: skip
_DEPTH = 64
"""Coroutines looked through for the middleware: it is the 5th to 10th of a request's task (uvicorn, Starlette and
the middleware outside it); a request in it never gets that far from the top."""
_SEQUENCE = re.compile(rb'"sequence_number":\s*(\d+)')


_ENDED: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
"""The loops whose server has begun ending its requests (`Drain.end`): a cancellation there is the shutdown's even
where it arrives without the message (anyio cancels a streaming response's own tasks with a plain one)."""


def is_shutdown(exc: BaseException) -> bool:
    """Whether `exc` is the cancellation (or a stream's close) that ends a request at the end of the grace period."""
    if isinstance(exc, asyncio.CancelledError) and exc.args == (MESSAGE,):
        return True
    if not isinstance(exc, asyncio.CancelledError | GeneratorExit):
        return False
    try:
        return asyncio.get_running_loop() in _ENDED
    except RuntimeError:  # no loop (a generator closed by the garbage collector)
        return False


class Drain:
    """The end of the HTTP requests still in flight when the shutdown's grace period runs out (one per app)."""

    def __init__(self, grace: float = 0.0) -> None:
        self.grace = grace
        """`shutdown_grace_seconds` as `serve` gave it to uvicorn (at start: a reload does not change uvicorn's)."""
        self.marks: set[CodeType] = set()
        """The code of the middleware that answers (`EdgeMiddleware.__call__`): a task awaiting it is a request."""
        self.stopping = False
        """A graceful shutdown began: a request cancelled now is answered by `answer`, not left to uvicorn."""
        self._timer: asyncio.TimerHandle | None = None

    def begin(self) -> None:
        """The server began its graceful shutdown: end the requests still running `MARGIN` s before its deadline."""
        if self.stopping:
            return
        self.stopping = True
        delay = max(0.0, math.ceil(self.grace) - MARGIN)
        self._timer = asyncio.get_running_loop().call_later(delay, self.end)

    def end(self) -> None:
        """Cancel every request still running; each is answered where the cancellation arrives (`answer`)."""
        self.stopping = True
        _ENDED.add(asyncio.get_running_loop())
        running = [task for task in asyncio.all_tasks() if self._serving(task)]
        if running:
            logger.warning("shutdown_grace_seconds (%s) ran out: ending %d requests still running with a 503 or "
                           "a final error event", self.grace, len(running))  # fmt: skip
        for task in running:
            task.cancel(MESSAGE)

    def _serving(self, task: asyncio.Task[Any]) -> bool:
        """Whether `task` serves an HTTP request in the middleware (which `answer`s it): its coroutine, or one it
        awaits down the chain, runs the middleware's code for an `http` scope."""
        awaited: Any = task.get_coro()
        for _ in range(_DEPTH):
            code = getattr(awaited, "cr_code", None)
            if code is None:
                return False
            if code in self.marks:  # an HTTP request's; the lifespan passes through the middleware too
                frame = awaited.cr_frame
                return frame is not None and frame.f_locals.get("scope", {}).get("type") == "http"
            awaited = awaited.cr_await
        return False

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        """While inside (the app's lifespan), SIGTERM and SIGINT `begin` the drain, after the handler already there
        (uvicorn's, which starts its graceful shutdown) has run. Nothing happens for a signal without a Python handler
        (no server that shuts down gracefully) or outside the main thread (an app served in a thread)."""
        loop = asyncio.get_running_loop()
        installed: dict[int, tuple[Callable[[int, FrameType | None], Any], Callable[..., None]]] = {}
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(signum)
            if not callable(previous):
                continue
            handler = _chained(previous, loop, self.begin)
            try:
                signal.signal(signum, handler)
            except ValueError:  # not the main thread
                break
            installed[signum] = previous, handler
        try:
            yield
        finally:
            for signum, (previous, handler) in installed.items():
                if signal.getsignal(signum) is handler:  # else someone installed theirs since: leave it
                    signal.signal(signum, previous)
            if self._timer is not None:
                self._timer.cancel()
            self._timer, self.stopping = None, False


def _chained(
    previous: Callable[[int, FrameType | None], Any], loop: asyncio.AbstractEventLoop, then: Callable[[], None]
) -> Callable[[int, FrameType | None], None]:
    """A signal handler: `previous`, then `then` in `loop` (a signal handler runs between two bytecodes of whatever
    the loop was doing, so it only queues the call)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        previous(signum, frame)
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing left to drain
            loop.call_soon_threadsafe(then)

    return handler


async def answer(scope: Scope, send: Send, head: Message | None, tail: Message | None) -> None:
    """End a request cancelled by the shutdown: a 503 in its API's shape if nothing was sent (`head` None), else
    a final error event on a stream. A non-stream response cut halfway is left unfinished: uvicorn closes its
    connection (a truncated body must not look whole)."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()  # answered: the cancellation is consumed
    path: str = scope.get("path", "")
    if head is None:
        status, body = _refusal(path)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"x-should-retry", b"true")]  # fmt: skip
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    elif _streamed(head):
        with contextlib.suppress(asyncio.CancelledError):  # uvicorn's own deadline: nothing more can be sent
            await send({"type": "http.response.body", "body": _final_event(path, tail), "more_body": False})


def _refusal(path: str) -> tuple[int, bytes]:
    if path.startswith("/v1/messages"):
        status = error_status(503)
        return status, orjson.dumps(error_body(status, TEXT))
    if _mcp(path):
        error = {"code": -32000, "message": TEXT}  # mcp.types.CONNECTION_CLOSED
        return 503, orjson.dumps({"jsonrpc": "2.0", "id": None, "error": error})
    return 503, orjson.dumps(_unavailable().to_openai())


def _final_event(path: str, tail: Message | None) -> bytes:
    if path.startswith("/v1/messages"):
        return named("error", error_body(error_status(503), TEXT))
    if path in ("/v1/responses", "/responses"):
        event: dict[str, Any] = {"type": "error", "code": CODE, "message": TEXT, "param": None}
        found = _SEQUENCE.findall(tail.get("body", b"") if tail is not None else b"")
        if found:
            event["sequence_number"] = int(found[-1]) + 1
        return named("error", event)
    if _mcp(path):
        return b""
    return stream_error_event(_unavailable())


def _unavailable() -> ServiceUnavailable:
    """The shutdown's error as the gateway's own 503 (hub.errors), so its OpenAI shape is the one every error has."""
    return ServiceUnavailable(TEXT, code=CODE)


def _mcp(path: str) -> bool:
    """The MCP endpoints that speak JSON-RPC (`/mcp`, `/mcp/<server>`, `/sse`), not the REST `/mcp/tools/*`."""
    return (path == "/mcp" or path.startswith(("/mcp/", "/sse"))) and not path.startswith("/mcp/tools/")


def _streamed(head: Message) -> bool:
    headers: list[tuple[bytes, bytes]] = head.get("headers") or []
    return any(name == b"content-type" and value.startswith(b"text/event-stream") for name, value in headers)
