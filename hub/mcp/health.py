"""An upstream's health as operators see it, and the small helpers its supervisor shares with the hub."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import mcp_types as types
from mcp.shared.exceptions import MCPError

from hub.mcp.redact import redact


@dataclass
class Status:
    """An upstream's health as operators see it: "connecting" only on the first attempt; after a failure it stays
    "down", with the last error, through every retry until it is ready again."""

    state: Literal["starting", "connecting", "ready", "down", "disabled"] = "starting"
    detail: str = ""
    attempts: int = 0
    protocol_version: str | None = None
    server_info: str | None = None
    since: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "detail": self.detail,
            "attempts": self.attempts,
            "protocol_version": self.protocol_version,
            "server_info": self.server_info,
        }


def error_result(text: str) -> types.CallToolResult:
    """A tool result reporting a failure the model can read."""
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)


def describe(exc: BaseException, url: str | None = None) -> str:
    """The innermost causes of a (nested) exception group, for status lines and logs: without the credentials and
    query of `url` (the upstream's, which httpx2's messages quote) or the credentials of any URL."""
    return redact(_causes(exc), url)


def _causes(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(dict.fromkeys(_causes(e) for e in exc.exceptions))  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
    if isinstance(exc, MCPError):
        return f"MCP error {exc.error.code}: {exc.error.message}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def timed_out(exc: MCPError) -> bool:
    """Whether `exc` is a request that timed out here: the hub's bound or the SDK's read timeout, each raised while
    handling its `TimeoutError`. An upstream's own -32001 error answer (which the SDK's timeout shares) is not."""
    return exc.error.code == types.REQUEST_TIMEOUT and isinstance(exc.__context__, TimeoutError)


async def no_progress(progress: float, total: float | None, message: str | None) -> None:
    return None


async def set_when(source: anyio.Event, target: anyio.Event) -> None:
    await source.wait()
    target.set()
