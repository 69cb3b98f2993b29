"""Bounds on what one query may cost: bytes per value and per result, and how many queries run at once."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio

from tools.postgres_db.databases import DatabaseError, JSONValue, QueryResult

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class Limits:
    """Per-value and per-result byte limits and the execute_query concurrency bound, shared by both backends."""

    max_value_bytes: int = 64 * KIB
    max_result_bytes: int = MIB
    max_concurrent_queries: int = 3
    queue_timeout: float = 5.0


class Busy(DatabaseError):
    """Every query slot stayed taken for the whole queue timeout."""


class QuerySlots:
    """At most `max_concurrent_queries` execute_query calls at once; the others queue for `queue_timeout`."""

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._semaphore = anyio.Semaphore(limits.max_concurrent_queries)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the block.

        Raises:
            Busy: no slot freed up within the queue timeout.
        """
        with anyio.move_on_after(self._limits.queue_timeout) as scope:
            await self._semaphore.acquire()
        if scope.cancelled_caught:
            raise Busy(busy_message(self._limits))
        try:
            yield
        finally:
            self._semaphore.release()


def busy_message(limits: Limits) -> str:
    """The error a caller gets when the database is busy with other queries."""
    running = "1 query is" if limits.max_concurrent_queries == 1 else f"{limits.max_concurrent_queries} queries are"
    return (
        f"Busy: {running} already running and none finished within "
        f"{limits.queue_timeout:g} s. Try again shortly, or make the query cheaper."
    )


def cut_text(prefix: str, total_bytes: int, max_bytes: int) -> str:
    """Cut text to at most `max_bytes` UTF-8 bytes and say how much was cut."""
    shown = prefix[:max_bytes].encode()[:max_bytes].decode(errors="ignore")  # a character is at least one byte
    return f"{shown}…[cut by postgres_db: {total_bytes} bytes in all, first {len(shown.encode())} shown]"


def cut_value(value: JSONValue, max_bytes: int) -> tuple[JSONValue, bool]:
    """Return the value, or its text cut to `max_bytes` with a marker, and whether it was cut."""
    if isinstance(value, str):
        if len(value) * 4 <= max_bytes:  # no UTF-8 character takes more than four bytes
            return value, False
        size = len(value.encode())
        return (value, False) if size <= max_bytes else (cut_text(value, size, max_bytes), True)
    if isinstance(value, list | dict):
        text = json.dumps(value, ensure_ascii=False)
        size = len(text.encode())
        return (value, False) if size <= max_bytes else (cut_text(text, size, max_bytes), True)
    return value, False


class RowCollector:
    """Collect converted rows up to `max_rows` and the result byte limit, cutting long values on the way."""

    def __init__(self, limits: Limits, max_rows: int) -> None:
        self.limits = limits
        self.max_rows = max_rows
        self.rows: list[list[JSONValue]] = []
        self.cut_values = 0
        self.more_rows = False
        self.byte_limited = False
        self._bytes = 0

    @property
    def full(self) -> bool:
        """Whether no more rows will be taken."""
        return self.more_rows or self.byte_limited

    def add(self, values: list[JSONValue], *, already_cut: Collection[int] = ()) -> bool:
        """Add one row; return False (and take nothing) once the row or byte limit is reached.

        `already_cut` lists the positions of values the database already cut (they carry their marker).
        """
        if len(self.rows) >= self.max_rows:
            self.more_rows = True
            return False
        row: list[JSONValue] = []
        cut = len(already_cut)
        for index, value in enumerate(values):
            if index in already_cut:
                row.append(value)
                continue
            shown, was_cut = cut_value(value, self.limits.max_value_bytes)
            row.append(shown)
            cut += was_cut
        size = len(json.dumps(row, ensure_ascii=False).encode()) + 2
        if self._bytes + size > self.limits.max_result_bytes:
            self.byte_limited = True
            return False
        self._bytes += size
        self.cut_values += cut
        self.rows.append(row)
        return True

    def result(self, columns: list[str]) -> QueryResult:
        """The collected rows as a QueryResult."""
        return QueryResult(
            columns=columns,
            rows=self.rows,
            truncated=self.full,
            cut_values=self.cut_values,
            byte_limit=self.limits.max_result_bytes if self.byte_limited else None,
        )
