"""What the hub's wrappers of the SDK's transport streams share: each is its own async context manager, closed by
its `aclose` (as anyio's streams are)."""

from __future__ import annotations

import contextvars
from types import TracebackType
from typing import Any, Self

import anyio
from mcp.shared.message import SessionMessage


class ClosingStream:
    """`async with stream:` closes it on the way out."""

    async def aclose(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc_val: BaseException | None, exc_tb: TracebackType | None
    ) -> None:
        await self.aclose()


class Forgetful(ClosingStream):
    """A session's read stream, as its dispatcher reads it, that forgets each message once the next is asked for.

    The SDK's dispatcher loop keeps the last message it dispatched (and the sender's context) in its frame until the
    next arrives; the message's metadata holds the Starlette `Request` of the POST it came in, with uvicorn's
    request cycle behind it: ~5 KB per idle session for 30 minutes. A message is dispatched, its metadata handed to
    its handler, before the loop asks for the next one, so the reference is dropped then."""

    __slots__ = ("_inner", "_last", "last_context")

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._last: Any = None
        self.last_context: contextvars.Context | None = None
        """The context of the sender of the message just received (the SDK's `ContextReceiveStream` has it)."""

    async def receive(self) -> Any:
        if isinstance(last := self._last, SessionMessage):
            last.metadata = None
        self._last = self.last_context = None
        if hasattr(self._inner, "last_context"):
            self._inner.last_context = None
        item = self._last = await self._inner.receive()
        self.last_context = getattr(self._inner, "last_context", None)
        return item

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        await self._inner.aclose()
