"""Key budgets: what each key has spent in its current budget period, counted in memory on the request path.

A key's spend is read from the store once (the first time this process sees the key), then kept here: every
finished request adds its cost synchronously, so concurrent requests cannot overspend by more than the requests
already in flight when the budget ran out. Periods (`budget_duration`) are aligned on the key's creation time, so
resetting needs no write: a new period simply starts at zero. The stored spend logs remain the source of truth.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass

from hub.errors import RateLimited
from hub.storage import KeyRow, Store

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w|mo|y)\s*$", re.ASCII)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "mo": 30 * 86400, "y": 365 * 86400}
_DURATION_CACHE: dict[str, float] = {}
CATCH_UP_LAG = 300.0
"""Seconds of spend logs a budget catch-up re-reads (logs normally land within a second or two)."""
MAX_DURATION = 100 * _UNITS["y"]
"""The longest `duration` / `budget_duration` accepted: later dates overflow the platform's time functions."""
USD_DIGITS = 10
"""Significant digits of the USD amounts the API shows: a $1,000,000 total to $0.0001, a $0.0000001 request to its
tenth digit, and above binary floating point's noise, which grows with the rows a total sums (12 x $0.1 + 7 x $0.2 is
2.6000000000000005; 20,064 requests of $0.30 summed 6019.2000000022, 76,152 summed 23757.1199999694)."""


def usd(amount: float) -> float:
    """`amount` as the API shows it: rounded to `USD_DIGITS` significant digits."""
    return float(f"{amount:.{USD_DIGITS}g}")


def parse_duration(text: str, *, bounded: bool = True) -> float:
    """Seconds in "30s", "15m", "24h", "30d", "2w", "1mo", "1y" (LiteLLM's duration strings).

    `bounded`: refuse anything over 100 years (for values from a request; stored ones are read as they are).

    Raises:
        ValueError: not such a string, or out of bounds.
    """
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"invalid duration {text!r}: use a number and a unit, e.g. 30s, 15m, 24h, 30d, 1mo")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if bounded and seconds > MAX_DURATION:
        raise ValueError(f"invalid duration {text!r}: at most 100y")
    return seconds


@dataclass(slots=True)
class Account:
    """One key's budget state in this process."""

    key_label: str
    max_budget: float | None
    period: float | None
    """Seconds per budget period; None: the budget is for the key's whole life."""
    created_at: float
    period_start: float
    spent: float
    stored_base: float = 0.0
    """Stored spend of this period logged before `watermark`: summed once, never re-read."""
    watermark: float = 0.0
    base_from: float | None = None
    """The `period_start` that `stored_base` counts from; another one (a new period) starts over."""
    reserved: float = 0.0
    """Worst-case cost held by this process's requests in flight (`hub.accounts.budget`)."""
    holds: int = 0
    """How many requests hold `reserved`."""

    def roll(self, now: float) -> None:
        if self.period is not None and now >= self.period_start + self.period:
            self.period_start = period_start(self.created_at, self.period, now)
            self.spent = 0.0

    @property
    def reset_at(self) -> float | None:
        return None if self.period is None else self.period_start + self.period

    def check(self, pending: float = 0.0) -> None:
        """Raise RateLimited when the budget is used up (counting `pending`: spend of a request still running)."""
        if self.max_budget is None:
            return
        now = time.time()
        self.roll(now)
        if self.spent + pending >= self.max_budget:
            reset = self.reset_at
            when = "" if reset is None else f" It resets at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(reset))}."
            headers = {} if reset is None else {"retry-after": str(max(1, math.ceil(reset - now)))}
            raise RateLimited(
                f"Budget exceeded for {self.key_label}: spent ${self.spent + pending:.6f} of max_budget "
                f"${self.max_budget:.6f}." + when,
                code="budget_exceeded",
                headers=headers,
            )

    def reserve(self, amount: float) -> None:
        """Hold `amount` (a request's worst case) while it fits: spent + reserved + amount <= max_budget, or nothing
        else is in flight (a request that cannot fit even alone runs alone, so the budget is passed by one request
        at most). Raises RateLimited: `budget_exceeded`, or `budget_reserved` while others hold what is left."""
        self.check()
        if self.max_budget is not None and self.holds and self.spent + self.reserved + amount > self.max_budget:
            raise held_refusal(self, self.spent, self.reserved, self.holds, amount)
        self.reserved += amount
        self.holds += 1

    def release(self, amount: float) -> None:
        self.holds = max(0, self.holds - 1)
        self.reserved = self.reserved - amount if self.holds else 0.0  # no float residue once nothing is held

    def charge(self, cost: float) -> None:
        if cost:
            self.roll(time.time())
            self.spent += cost


def held_refusal(account: Account, spent: float, reserved: float, holds: int, amount: float) -> RateLimited:
    """429 `budget_reserved`: what is left of the budget is held by requests in flight (retry when they finish)."""
    budget = account.max_budget or 0.0
    return RateLimited(
        f"Budget of {account.key_label} is held by {holds} request(s) in flight: spent ${spent:.6f}, reserved "
        f"${reserved:.6f}, and this request may cost up to ${amount:.6f}, over max_budget ${budget:.6f}. Retry when "
        "they finish, or send a lower max_tokens.",
        code="budget_reserved",
        headers={"retry-after": "1"},
    )


def period_start(created_at: float, period: float | None, now: float) -> float:
    if period is None:
        return 0.0
    return created_at + math.floor(max(0.0, now - created_at) / period) * period


def budget_period(duration: str | None) -> float | None:
    """Seconds per budget period of a stored key; None for none (or a value no longer accepted: never a crash)."""
    if not duration:
        return None
    seconds = _DURATION_CACHE.get(duration)
    if seconds is None:
        try:
            seconds = parse_duration(duration, bounded=False)
        except ValueError:  # int() refuses over 4,300 digits
            seconds = 0
        _DURATION_CACHE[duration] = seconds
    return seconds or None


def _label(row: KeyRow) -> str:
    return f"key '{row.key_alias}'" if row.key_alias else f"key {row.key_name}"


class BudgetLedger:
    """Accounts by key hash; an account outlives cache refreshes of its key so in-memory spend is never lost."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._accounts: dict[str, Account] = {}

    async def account(self, row: KeyRow) -> Account:
        """The key's account, loading its period's spend from the store the first time, and for a key with a budget,
        catching up with the stored spend (other processes') on every later refresh."""
        account = self._accounts.get(row.token_hash)
        period = budget_period(row.budget_duration)
        if account is None:
            start = period_start(row.created_at, period, time.time())
            fresh = Account(_label(row), row.max_budget, period, row.created_at, start, 0.0)
            fresh.spent = await self._stored(row.token_hash, fresh)
            account = self._accounts.setdefault(row.token_hash, fresh)
        elif row.max_budget is not None:
            # Other processes spend from the same key: on each refresh of the key, catch up with what is stored.
            account.roll(time.time())
            start = account.period_start
            stored = await self._stored(row.token_hash, account)
            # Read after the await: a charge made during it is kept. A charge that began a new period meanwhile
            # reset `spent`: `stored` is the old period's then, and the next refresh reads the new one's.
            if account.period_start == start:
                account.spent = max(account.spent, stored)
        account.key_label, account.max_budget = _label(row), row.max_budget
        if account.period != period:
            account.period = period
            account.period_start = period_start(row.created_at, period, time.time())
        return account

    async def _stored(self, token_hash: str, account: Account) -> float:
        """The key's stored spend in its current period. Logs older than `CATCH_UP_LAG` are summed once into the
        account's base, so a refresh reads the last minutes of logs, not the whole period: that grew with traffic
        (500,000 logged requests cost 90 ms of CPU per refresh on SQLite, every `key_cache_seconds`). A log stored
        more than `CATCH_UP_LAG` after its request (a spill file replayed after an outage) is missed by the other
        processes' catch-up until the next period."""
        if account.base_from != account.period_start:  # first read, a new period or a new budget_duration
            account.base_from = account.watermark = account.period_start
            account.stored_base = 0.0
        recent = await self.store.spend_since(token_hash, account.watermark)
        edge = time.time() - CATCH_UP_LAG
        if edge > account.watermark:
            newer = await self.store.spend_since(token_hash, edge)
            account.stored_base += recent - newer
            account.watermark, recent = edge, newer
        return account.stored_base + recent

    def get(self, token_hash: str) -> Account | None:
        return self._accounts.get(token_hash)

    def forget(self, token_hash: str) -> None:
        self._accounts.pop(token_hash, None)
