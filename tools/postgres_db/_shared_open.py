"""The lifetime both database backends share: open for the first user of `connected()`, close after the last."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio


class SharedOpen:
    """Base of the backends: a re-entrant `connected()` over backend-specific `_open_first` and `_close_last`."""

    def __init__(self) -> None:
        self._users = 0
        self._open_lock = anyio.Lock()

    async def _open_first(self) -> None:
        """Open the connection or pool; called under the lock when the first user enters."""
        raise NotImplementedError

    async def _close_last(self) -> None:
        """Close what `_open_first` opened, if anything; called when the last user leaves."""
        raise NotImplementedError

    @asynccontextmanager
    async def connected(self) -> AsyncIterator[None]:
        """Open on first entry and close when the last user leaves (re-entrant)."""
        async with self._open_lock:
            if self._users == 0:
                await self._open_first()
            self._users += 1
        try:
            yield
        finally:
            self._users -= 1
            if self._users == 0:
                await self._close_last()
