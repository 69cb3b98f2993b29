"""Usage records leave the request path here: journaled locally, queued in memory, flushed in batches by one task.

`record()` gives the record its row id, appends it to this process's journal (hub/scale/journal.py: one `write(2)`,
which survives a `kill -9` of the process) and to a list. The flusher writes batches; when the database fails it keeps
the batch and retries with backoff, and past a bound (pending records or consecutive failures) appends the batch to a
local JSON-lines spill file. After the next successful write the spill file is replayed, and so are the journals of
dead processes (this one's previous run, a killed worker). Every row's id is fixed when it is journaled and the
stores skip ids they already hold, so retries and replays never count a record twice. On shutdown the queue is
flushed, or spilled if the database is down: records are never dropped.
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import logging
import os
import time
import urllib.parse
import uuid
from collections.abc import Sequence
from pathlib import Path

import anyio

from hub.accounts.usage import ToolCallRecord, UsageRecord
from hub.scale.journal import Journal, append_lines, read_items
from hub.storage import Store, StoredToolCall, StoredUsage, StoreError, is_postgres_url, sqlite_path

logger = logging.getLogger("toolhub.storage")

Item = StoredUsage | StoredToolCall


class UsageWriter:
    """A `UsageSink` that stores records through `store` off the request path."""

    def __init__(self, store: Store, spill_path: Path, *, batch_size: int = 500, interval: float = 1.0,
                 spill_after_failures: int = 3, max_pending: int = 20_000, retry_max: float = 5.0,
                 journal: bool = True, orphan_scan_interval: float = 30.0) -> None:  # fmt: skip
        self.store = store
        self.spill_path = spill_path
        self.batch_size = batch_size
        self.interval = interval
        self.spill_after_failures = spill_after_failures
        self.max_pending = max_pending
        self.retry_max = retry_max
        self._new: list[Item] = []
        self._retry: list[Item] = []
        self._failures = 0
        self._wake = anyio.Event()
        self._lock = anyio.Lock()
        self._ids = itertools.count()
        self._boot = uuid.uuid4().hex[:16]
        self.journal = Journal(journal_dir(spill_path), self._boot, _scope(store)) if journal else None
        self._journaling = journal
        self.orphan_scan_interval = orphan_scan_interval
        self._next_scan = 0.0
        self.written = 0
        self.spilled = 0
        self.recovered = 0

    # -- request path: no awaits, no tasks ------------------------------------------------------------------------

    def record(self, record: UsageRecord) -> None:
        self._take(StoredUsage(f"{self._boot}-{next(self._ids):x}", record))

    def record_tool_call(self, call: ToolCallRecord) -> None:
        self._take(StoredToolCall(f"{self._boot}-{next(self._ids):x}", call))

    def _take(self, item: Item) -> None:
        journal = self.journal
        if journal is not None and self._journaling:
            self._journal(journal, item)
        new = self._new
        new.append(item)
        if len(new) >= self.batch_size:
            self._wake.set()
            if len(new) >= self.max_pending:  # the flusher is stuck on a hanging database: never grow unbounded
                self._spill_now(self._drain())

    def _journal(self, journal: Journal, item: Item) -> None:
        """Before the answer leaves: a kill -9 from here on loses nothing. A disk that fails (full, EIO) turns the
        journal off, not the request: the record stays queued for the database like any other."""
        try:
            journal.append(item)
        except OSError as exc:
            self._journaling = False
            logger.error("usage journal %s failed (%s); journaling is off until restart: records "
                         "are still written to the database, but a killed process loses its unwritten ones",
                         journal.directory, exc)  # fmt: skip

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
        """Write everything queued (then replay the spill file and dead processes' journals); False when the
        database failed."""
        async with self._lock:
            if self.journal is not None:
                self.journal.rotate()  # the closed segments hold exactly what is drained now (and any retry)
            items = self._retry + self._drain()
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
            self._committed()
            return await self._replay() and await self._recover()

    async def aclose(self) -> None:
        """Flush what is queued; spill it if the database is down. The journal goes once all is stored or spilled."""
        if not await self.flush():
            async with self._lock:
                items, self._retry = self._retry + self._drain(), []
                if items:
                    await anyio.to_thread.run_sync(self._append, items)
        if self.journal is not None:
            self.journal.close()

    def _committed(self) -> None:
        """Nothing is waiting for a retry: every closed journal segment is stored or spilled."""
        if self.journal is not None and not self._retry:
            self.journal.committed()

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
            self._committed()
        else:
            logger.warning("usage store failing (%s); %d records kept for retry", exc, len(items))
            self._retry = items

    def _drain(self) -> list[Item]:
        new, self._new = self._new, []
        return new

    # -- spill file ------------------------------------------------------------------------------------------------

    def _spill_now(self, items: list[Item]) -> None:
        logger.warning("usage queue over %d records; spilling to %s", self.max_pending, self.spill_path)
        self._append(items)

    def _append(self, items: list[Item]) -> None:
        append_lines(self.spill_path, items)
        self.spilled += len(items)

    async def _replay(self) -> bool:
        """Write spilled records back. The file is first renamed to this process's own name (one rename: one
        process gets it), so new spills cannot be lost by the unlink and no other worker's replay is overwritten."""
        replaying = self.spill_path.with_name(f"{self.spill_path.name}.{self._boot}.replay")
        if not replaying.exists() and not self._claim(replaying):
            return True
        items = await anyio.to_thread.run_sync(read_items, replaying)
        for start in range(0, len(items), self.batch_size):
            try:
                await self._write(items[start : start + self.batch_size])
            except StoreError as exc:
                self._failures += 1
                logger.warning("replaying %s failed (%s); will retry", replaying, exc)
                return False
        logger.info("replayed %d spilled usage records from %s", len(items), replaying)
        replaying.unlink(missing_ok=True)
        return True

    def _claim(self, replaying: Path) -> bool:
        """Take the spill file, or a replay file left by a process that stopped midway (replaying it again while its
        owner still runs only writes ids already stored)."""
        name = glob.escape(self.spill_path.name)
        strays = sorted(self.spill_path.parent.glob(f"{name}.*replay"))
        for path in [*strays, self.spill_path]:
            try:
                os.rename(path, replaying)
            except FileNotFoundError:  # another worker took it first
                continue
            return True
        return False

    async def _recover(self) -> bool:
        """Store what dead processes journaled (at start, then every `orphan_scan_interval` s)."""
        journal = self.journal
        if journal is None or time.monotonic() < self._next_scan:
            return True
        self._next_scan = time.monotonic() + self.orphan_scan_interval
        for boot, segments in journal.orphans():
            for segment in segments:
                items = await anyio.to_thread.run_sync(read_items, segment)
                try:
                    for start in range(0, len(items), self.batch_size):
                        await self._write(items[start : start + self.batch_size])
                except StoreError as exc:
                    self._failures += 1
                    self._next_scan = 0.0
                    logger.warning("replaying the journal of process %s failed (%s); will retry", boot, exc)
                    return False
                segment.unlink(missing_ok=True)
                self.recovered += len(items)
                logger.info("recovered %d usage records journaled by process %s (%s)", len(items), boot, segment)
        return True


def _scope(store: Store) -> str:
    return database_scope(str(getattr(store, "url", "")), getattr(store, "schema", None))


def database_scope(url: str, schema: str | None = None) -> str:
    """Names a database in journal and spill file names, so a process never replays another database's records.

    A hash of what picks the database (scheme, host, port, database name, schema; the absolute path of a SQLite
    file), never of credentials: a password rotation keeps the name, and the name tells nothing of the password."""
    if not url:
        return _digest("")
    if not is_postgres_url(url):
        return _digest(f"sqlite:{Path(sqlite_path(url)).resolve()}")
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qs(parts.query)
    host = parts.hostname or query.get("host", [""])[0]
    port = parts.port or int(query.get("port", ["5432"])[0])
    name = parts.path.lstrip("/") or query.get("dbname", [""])[0]
    schema = schema or query.get("search_path", query.get("options", [""]))[0]
    return _digest(f"postgresql://{host}:{port}/{name}?{schema}")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def journal_dir(spill_path: Path) -> Path:
    """The journal directory beside the spill file: `toolhub.db.spill.jsonl` -> `toolhub.db.spill.journal/`."""
    return spill_path.with_name(spill_path.name.removesuffix(".jsonl") + ".journal")
