"""A start that fails for a reason the operator fixes (the database refuses, a config value) told in one line.

uvicorn logs at ERROR whatever message the app gives for a failed lifespan startup, and Starlette gives the whole
formatted traceback with its chained causes: a PostgreSQL that refused the connection printed asyncpg's traceback and
the StoreError's above the line that says it all. `OneLineStartupErrors` wraps the app for the lifespan (see
`TunedServer.startup`, which serves requests without it): when the startup fails with a `StoreError` or
`ConfigError`, uvicorn gets that error's message (which names the cause), and the traceback goes to the same log at
DEBUG (`serve --log-level debug`). Any other failure is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.config import ConfigError
from hub.storage import StoreError

logger = logging.getLogger("uvicorn.error")
"""uvicorn's lifespan log, whose level `--log-level` sets."""


class OneLineStartupErrors:
    """ASGI wrapper: a `lifespan.startup.failed` caused by a StoreError or ConfigError carries only its message."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        held: list[Message] = []

        async def hold_failure(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed":  # Starlette sends it, then raises the exception
                held.append(message)
                return
            await send(message)

        try:
            await self.app(scope, receive, hold_failure)
        except BaseException as exc:
            if held:
                failed = held.pop()
                await send({**failed, "message": told(exc, str(failed.get("message") or ""))})
            raise
        finally:
            if held:  # failed without raising: as it was
                await send(held.pop())


def told(exc: BaseException, traceback_text: str) -> str:
    """The startup failure as uvicorn should log it: the message of an operator's error, else the traceback."""
    cause = root_cause(exc)
    if not isinstance(cause, StoreError | ConfigError):
        return traceback_text
    logger.debug("application startup failed:\n%s", traceback_text)
    if isinstance(cause, StoreError):
        return f"database: {cause}"
    return f"config error at {cause}" if cause.path else str(cause)


def root_cause(exc: BaseException) -> BaseException:
    """The one error inside task-group wrappers (anyio wraps a failing task in an ExceptionGroup)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
