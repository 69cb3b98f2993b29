"""Usage records leave the request path here: an in-memory queue flushed in batches by one background task.

`record()` only appends to a list. The flusher writes batches; when the database fails it keeps the batch and retries
with backoff, and past a bound (pending records or consecutive failures) appends the batch to a local JSON-lines
spill file. After the next successful write the spill file is replayed. Every row has an id fixed before its first
write attempt and the stores skip ids they already hold, so retries and replays never count a record twice. On
shutdown the queue is flushed, or spilled if the database is down: records are never dropped.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import orjson

from hub.accounts.usage import ToolCallRecord, UsageRecord
from hub.storage import Store, StoredToolCall, StoredUsage, StoreError

logger = logging.getLogger("toolhub.storage")

Item = StoredUsage | StoredToolCall


class UsageWriter:
    """A `UsageSink` that stores records through `store` off the request path."""

    def __init__(self, store: Store, spill_path: Path, *, batch_size: int = 500, interval: float = 1.0,
                 spill_after_failures: int = 3, max_pending: int = 20_000, retry_max: float = 5.0) -> None:  # fmt: skip
        self.store = store
        self.spill_path = spill_path
        self.batch_size = batch_size
        self.interval = interval
        self.spill_after_failures = spill_after_failures
        self.max_pending = max_pending
        self.retry_max = retry_max
        self._new: list[UsageRecord | ToolCallRecord] = []
        self._retry: list[Item] = []
        self._failures = 0
        self._wake = anyio.Event()
        self._lock = anyio.Lock()
        self._ids = itertools.count()
        self._boot = uuid.uuid4().hex[:16]
        self.written = 0
        self.spilled = 0

    # -- request path: no awaits, no tasks ------------------------------------------------------------------------

    def record(self, record: UsageRecord) -> None:
        self._take(record)

    def record_tool_call(self, call: ToolCallRecord) -> None:
        self._take(call)

    def _take(self, item: UsageRecord | ToolCallRecord) -> None:
        new = self._new
        new.append(item)
        if len(new) >= self.batch_size:
            self._wake.set()
            if len(new) >= self.max_pending:  # the flusher is stuck on a hanging database: never grow unbounded
                self._spill_now(self._stamp(self._drain()))

    @property
    def pending(self) -> int:
        return len(self._new) + len(self._retry)

    # -- background ------------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Flush every `interval` seconds or when a batch is full; back off while the database fails."""
        while True:
            delay = self.interval if not self._failures else min(self.retry_max, 0.1 * 2**self._failures)
            with anyio.move_on_after(delay):
                await self._wake.wait()
            self._wake = anyio.Event()
            await self.flush()

    async def flush(self) -> bool:
        """Write everything queued (then replay the spill file); False when the database failed."""
        async with self._lock:
            items = self._retry + self._stamp(self._drain())
            self._retry = []
            for start in range(0, len(items), self.batch_size):
                try:
                    await self._write(items[start : start + self.batch_size])
                except StoreError as exc:
                    await self._failed(items[start:], exc)
                    return False
                except BaseException:
                    # cancelled mid-write (shutdown): keep the batch, `aclose` writes or spills it; ids make a
                    # batch that did land count once
                    self._retry = items[start:]
                    raise
            self._failures = 0
            return await self._replay()

    async def aclose(self) -> None:
        """Flush what is queued; spill it if the database is down."""
        if not await self.flush():
            async with self._lock:
                items, self._retry = self._retry + self._stamp(self._drain()), []
                if items:
                    await anyio.to_thread.run_sync(self._append, items)

    async def _write(self, items: Sequence[Item]) -> None:
        usage = [i for i in items if isinstance(i, StoredUsage)]
        tools = [i for i in items if isinstance(i, StoredToolCall)]
        if usage:
            await self.store.write_usage(usage)
        if tools:
            await self.store.write_tool_calls(tools)
        self.written += len(items)

    async def _failed(self, items: list[Item], exc: StoreError) -> None:
        self._failures += 1
        if self._failures >= self.spill_after_failures or len(items) >= self.max_pending:
            logger.warning("usage store failing (%s); spilling %d records to %s", exc, len(items), self.spill_path)
            await anyio.to_thread.run_sync(self._append, items)
        else:
            logger.warning("usage store failing (%s); %d records kept for retry", exc, len(items))
            self._retry = items

    def _drain(self) -> list[UsageRecord | ToolCallRecord]:
        new, self._new = self._new, []
        return new

    def _stamp(self, records: list[UsageRecord | ToolCallRecord]) -> list[Item]:
        boot, ids = self._boot, self._ids
        return [StoredUsage(f"{boot}-{next(ids):x}", r) if isinstance(r, UsageRecord)
                else StoredToolCall(f"{boot}-{next(ids):x}", r) for r in records]  # fmt: skip

    # -- spill file ------------------------------------------------------------------------------------------------

    def _spill_now(self, items: list[Item]) -> None:
        logger.warning("usage queue over %d records; spilling to %s", self.max_pending, self.spill_path)
        self._append(items)

    def _append(self, items: Sequence[Item]) -> None:
        lines = [orjson.dumps(_to_json(i)) + b"\n" for i in items]
        self.spill_path.parent.mkdir(parents=True, exist_ok=True)
        with self.spill_path.open("ab") as f:
            f.writelines(lines)
            f.flush()
        self.spilled += len(items)

    async def _replay(self) -> bool:
        """Write spilled records back; the file is renamed first so new spills cannot be lost by the unlink."""
        replaying = self.spill_path.with_name(self.spill_path.name + ".replay")
        if not replaying.exists():
            if not self.spill_path.exists():
                return True
            self.spill_path.rename(replaying)
        items = await anyio.to_thread.run_sync(_read, replaying)
        for start in range(0, len(items), self.batch_size):
            try:
                await self._write(items[start : start + self.batch_size])
            except StoreError as exc:
                self._failures += 1
                logger.warning("replaying %s failed (%s); will retry", replaying, exc)
                return False
        logger.info("replayed %d spilled usage records from %s", len(items), replaying)
        replaying.unlink()
        return True


_REQUEST_ONLY = frozenset({"ticket", "priced_route"})
"""UsageRecord fields that live only while the request runs (a ticket; a route, which holds the provider's key)."""


def _to_json(item: Item) -> dict[str, Any]:
    if isinstance(item, StoredUsage):
        record = item.record
        data = {f.name: getattr(record, f.name) for f in dataclasses.fields(record) if f.name not in _REQUEST_ONLY}
        return {"kind": "usage", "id": item.id, **data}
    return {"kind": "tool", "id": item.id, **dataclasses.asdict(item.call)}


def _read(path: Path) -> list[Item]:
    items: list[Item] = []
    with path.open("rb") as f:
        for line in f:
            try:
                data = orjson.loads(line)
            except orjson.JSONDecodeError:  # a torn last line from a crash mid-write
                logger.error("spill file %s: unreadable line skipped: %r", path, line[:200])
                continue
            kind, item_id = data.pop("kind"), data.pop("id")
            items.append(StoredUsage(item_id, UsageRecord(**data)) if kind == "usage"
                         else StoredToolCall(item_id, ToolCallRecord(**data)))  # fmt: skip
    return items
