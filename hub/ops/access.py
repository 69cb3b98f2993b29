"""The access log: one line per answered request, with what an operator needs to find it again.

A line has the method, path (never the query string), status, request id, key alias, model, duration and tokens;
never a key or message text. By default only 4xx and 5xx answers are logged (`general_settings.access_log:
errors`); `all` logs successes too, `off` adds nothing to the request path.

The middleware learns the key alias and the usage of a chat request through a per-request holder in a context
variable, filled by wrappers around the app's authenticator and usage sink (`instrument`), so the gateway's own
modules stay unaware of the access log.
"""

from __future__ import annotations

import contextvars
import logging
import time
from typing import Literal

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.accounts.auth import MasterKeyAuth, Principal
from hub.accounts.usage import ToolCallRecord, UsageRecord, UsageSink
from hub.ops.logs import printable

AccessMode = Literal["errors", "all", "off"]
logger = logging.getLogger("toolhub.access")


class _Seen:
    """What the request path told the access log about one request."""

    __slots__ = ("alias", "record")

    def __init__(self) -> None:
        self.alias: str | None = None
        self.record: UsageRecord | None = None


_CURRENT: contextvars.ContextVar[_Seen | None] = contextvars.ContextVar("toolhub_access", default=None)


class AccessLogMiddleware:
    """Pure ASGI: notes the status on the way out and logs once the answer is sent (or failed)."""

    def __init__(self, app: ASGIApp, mode: AccessMode = "errors") -> None:
        self.app = app
        self.threshold = 0 if mode == "all" else 400

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before the answer started is answered 500 by the server
        seen = _Seen()
        token = _CURRENT.set(seen)

        async def noting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting_send)
        finally:
            _CURRENT.reset(token)
            if status >= self.threshold:
                _log(scope, status, seen, (time.perf_counter() - started) * 1000)


def _log(scope: Scope, status: int, seen: _Seen, duration_ms: float) -> None:
    record = seen.record
    fields = {
        "method": scope.get("method", ""),
        "path": scope.get("path", ""),
        "status": status,
        "request_id": scope.get("state", {}).get("request_id", ""),
        "key_alias": seen.alias,
        "model": record.model_alias if record else None,
        "duration_ms": round(duration_ms, 2),
        "prompt_tokens": record.prompt_tokens if record else None,
        "completion_tokens": record.completion_tokens if record else None,
    }
    logger.info(  # the client's text (path, request id, model) escaped: one request, one line
        "%s %s %d %.1fms request_id=%s key_alias=%s model=%s tokens=%s+%s",
        *(printable(fields[k]) for k in ("method", "path", "status", "duration_ms", "request_id", "key_alias",
                                         "model")),  # fmt: skip
        fields["prompt_tokens"], fields["completion_tokens"],
        extra={"access": fields},
    )  # fmt: skip


class _NotingAuth(MasterKeyAuth):
    """The app's authenticator, noting the caller's key alias for the access log."""

    def __init__(self, inner: MasterKeyAuth) -> None:
        self._inner = inner

    @property
    def open(self) -> bool:
        return self._inner.open

    async def authenticate(self, token: str | None) -> Principal:
        principal = await self._inner.authenticate(token)
        seen = _CURRENT.get()
        if seen is not None:
            seen.alias = principal.alias
        return principal


class _NotingSink:
    """The app's usage sink, handing each chat request's record to the access log as well."""

    def __init__(self, inner: UsageSink) -> None:
        self._inner = inner

    def record(self, record: UsageRecord) -> None:
        seen = _CURRENT.get()
        if seen is not None:
            seen.record = record
        self._inner.record(record)

    def record_tool_call(self, call: ToolCallRecord) -> None:
        self._inner.record_tool_call(call)


def instrument(auth: MasterKeyAuth, usage: UsageSink) -> tuple[MasterKeyAuth, UsageSink]:
    """Wrap the app's authenticator and usage sink (after every extension set its own) for the access log."""
    return _NotingAuth(auth), _NotingSink(usage)
