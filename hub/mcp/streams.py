"""What the hub's wrappers of the SDK's transport streams share: each is its own async context manager, closed by
its `aclose` (as anyio's streams are)."""

from __future__ import annotations

from types import TracebackType
from typing import Self


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
