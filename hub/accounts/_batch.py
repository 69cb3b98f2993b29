"""One Redis script call for many requests: those that arrive while a call is in flight go together in the next.

Each request gives its own KEYS and ARGV; the script gets a shared head of ARGV, then every request's in order, and
answers `width` values per request. One round trip per batch instead of one per request is what keeps a shared
budget cheap under load (`RedisLimiter` checks rate limits the same way).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio

MAX_BATCH = 256
"""Most requests in one script call (Redis runs a script alone: keep each call short)."""


class BatchFailed(Exception):
    """The script call of this request's batch failed with an error other than the expected ones (raised to its
    sender): the request has no answer."""


class _Waiter:
    __slots__ = ("keys", "args", "done", "lead", "result", "error")

    def __init__(self, keys: list[str], args: list[Any]) -> None:
        self.keys = keys
        self.args = args
        self.done = anyio.Event()
        self.lead = False
        """Set when the previous batch's sender hands the next batch to this request."""
        self.result: list[Any] | None = None
        self.error: BaseException | None = None


class ScriptBatch:
    """Calls `script` with the requests queued, `head()` first in ARGV; `call` raises what the script call raised."""

    def __init__(self, script: Any, width: int, head: Callable[[], list[Any]], errors: tuple[type[BaseException], ...]):
        self._script = script
        self._width = width
        self._head = head
        self._errors = errors
        self._queue: list[_Waiter] = []
        self._busy = False

    async def call(self, keys: list[str], args: list[Any]) -> list[Any]:
        waiter = _Waiter(keys, args)
        self._queue.append(waiter)
        if self._busy:
            try:
                await waiter.done.wait()
            except BaseException:
                self._abandon(waiter)
                raise
        if not waiter.done.is_set() or waiter.lead:
            await self._send()
        if waiter.error is not None:
            raise waiter.error
        if waiter.result is None:
            raise BatchFailed("the script call of this request's batch failed")
        return waiter.result

    async def _send(self) -> None:
        self._busy = True
        batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
        keys: list[str] = []
        args: list[Any] = self._head()
        for waiter in batch:
            waiter.lead = False
            keys += waiter.keys
            args += waiter.args
        flat: list[Any] = []
        try:
            with anyio.CancelScope(shield=True):  # the batch answers other requests: a cancelled sender still ends it
                flat = await self._script(keys=keys, args=args)
        except self._errors as exc:
            for waiter in batch:
                waiter.error = exc
        else:
            width = self._width
            for i, waiter in enumerate(batch):
                waiter.result = list(flat[width * i : width * (i + 1)])
        finally:
            for waiter in batch:
                waiter.done.set()
            self._pass_lead()

    def _pass_lead(self) -> None:
        if self._queue:
            first = self._queue[0]
            first.lead = True
            first.done.set()
        else:
            self._busy = False

    def _abandon(self, waiter: _Waiter) -> None:
        """A waiting request was cancelled: leave the queue, and hand on the next batch if it had been given it."""
        if waiter in self._queue:
            self._queue.remove(waiter)
        if waiter.lead:
            waiter.lead = False
            self._pass_lead()
