"""Console login attempts per client address, in the database (migration 0011_login_attempts.sql), so every process
and replica on it counts the same attempts (`hub.ui.session.LoginAttempts`).

An attempt is checked against the limit and counted in one write transaction. On SQLite `BEGIN IMMEDIATE` takes the
file's write lock, which every process on the file waits for; on PostgreSQL a transaction-scoped advisory lock on
the address does the same for that address (READ COMMITTED alone would let two concurrent attempts each miss the
other's uncommitted row). So concurrent attempts, in any process, each see the ones counted before them. Each
attempt also deletes the rows of every address older than the window: the table holds about one window of attempts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from hub.storage import Store, StoreError, is_postgres

Run = Callable[[str, Sequence[Any]], Awaitable[Iterable[Any]]]

_LOCK = "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.toolhub_login_attempts.' || $1))"
_PRUNE = "DELETE FROM toolhub_login_attempts WHERE at <= $1"
_PG_PRUNE = (  # rows another attempt is deleting right now are left to it: no waiting, no deadlock
    "DELETE FROM toolhub_login_attempts WHERE id IN "
    "(SELECT id FROM toolhub_login_attempts WHERE at <= $1 FOR UPDATE SKIP LOCKED)"
)
_RECENT = "SELECT at FROM toolhub_login_attempts WHERE address = $1 AND at > $2 ORDER BY at DESC LIMIT $3"
_INSERT = "INSERT INTO toolhub_login_attempts (id, address, at) VALUES ($1, $2, $3)"
_TAKE_BACK = "DELETE FROM toolhub_login_attempts WHERE id = $1"


async def count(store: Store, attempt_id: str, address: str, now: float, limit: int, window: float) -> float:
    """Count an attempt by `address` at `now` as `attempt_id`, unless `address` already made `limit` attempts in the
    last `window` seconds: returns the seconds it must wait then (0: counted, go ahead).

    Raises:
        StoreError: the database failed; nothing was counted.
    """
    from hub.storage.sqlite import SqliteStore

    row = (attempt_id, address, now, limit, window)
    if is_postgres(store):
        async with store._transaction() as conn:  # pyright: ignore[reportPrivateUsage]
            await conn.execute(_LOCK, address)
            return await _count(lambda text, args: conn.fetch(text, *args), _PG_PRUNE, *row)
    if isinstance(store, SqliteStore):
        async with store._transaction() as conn:  # pyright: ignore[reportPrivateUsage]
            return await _count(lambda text, args: conn.execute_fetchall(text.replace("$", "?"), args), _PRUNE, *row)
    raise StoreError(f"login attempts cannot be counted in {type(store).__name__}")


async def _count(run: Run, prune: str, attempt_id: str, address: str, now: float, limit: int, window: float) -> float:
    await run(prune, [now - window])
    recent = list(await run(_RECENT, [address, now - window, limit]))
    if len(recent) >= limit:  # the limit-th newest attempt leaving the window lets the next one in
        return min(float(recent[-1]["at"]) + window - now, window)  # min: another replica's clock may be ahead
    await run(_INSERT, [attempt_id, address, now])
    return 0.0


async def take_back(store: Store, attempt_id: str) -> None:
    """Uncount one attempt (a successful login); the address's other attempts still count.

    Raises:
        StoreError: the database failed.
    """
    await store.execute(_TAKE_BACK, [attempt_id])
