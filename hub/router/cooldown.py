"""Deployment cooldowns: failures counted per minute, deployments skipped while they cool.

A deployment cools for `cooldown_time` once its failures within a minute exceed `allowed_fails` (per error kind
with `allowed_fails_policy`). Unlike LiteLLM every failed attempt counts at once, and a deployment that refused the
connection or timed out cools at the first failure (unless `allowed_fails_policy` sets a number for timeouts): a
dead deployment must not cost the next request its timeout. A 429 or a `retry-after` cools it that long, at most
`MAX_RETRY_AFTER` (or `cooldown_time` if longer): one header must not take a deployment out until restart.

`Cooldowns` is this process's state and is read on the hot path without awaiting. `RedisCooldowns` adds sharing:
a cooldown is written to Redis, and every process reads the group's cooldowns back twice a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from typing import Any

import anyio

from hub.accounts.ratelimit import redis_error
from hub.router.classify import MAX_RETRY_AFTER
from hub.router.config import ErrorKind, RouterPolicy

logger = logging.getLogger("hub.router")
WINDOW = 60.0
POLL_SECONDS = 0.5
_PREFIX = "toolhub:cooldown:"
_FAILS = "toolhub:fails:"


class Cooldowns:
    """Which deployments are cooling, and until when (monotonic seconds)."""

    def __init__(self, policy: RouterPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self.clock = clock
        self.until: dict[str, float] = {}
        self._fails: dict[str, deque[tuple[float, ErrorKind]]] = {}

    def cooling(self, deployment: str, now: float) -> bool:
        until = self.until.get(deployment)
        if until is None:
            return False
        if until <= now:
            del self.until[deployment]
            return False
        return True

    def failed(
        self, deployment: str, kind: ErrorKind, *, retry_after: float | None = None, immediate: bool = False
    ) -> float:
        """Count a failure; return the seconds the deployment now cools (0 when it does not)."""
        now = self.clock()
        fails = self._fails.setdefault(deployment, deque())
        fails.append((now, kind))
        while fails and fails[0][0] <= now - WINDOW:
            fails.popleft()
        seconds = self._cool_for(fails, kind, retry_after, immediate)
        if seconds > 0:
            self.cool(deployment, now + seconds)
        return seconds

    def _cool_for(self, fails: deque[tuple[float, ErrorKind]], kind: ErrorKind, retry_after: float | None,
                  immediate: bool) -> float:  # fmt: skip
        if retry_after is not None and kind in ("rate_limit", "server", "timeout"):
            return min(max(retry_after, 0.001), max(MAX_RETRY_AFTER, self.policy.cooldown_time))
        if kind == "rate_limit":
            return self.policy.cooldown_time
        if immediate and kind not in self.policy.allowed_fails_by_kind:
            return self.policy.cooldown_time
        by_kind = kind in self.policy.allowed_fails_by_kind
        count = sum(1 for _, k in fails if k == kind) if by_kind else len(fails)
        return self.policy.cooldown_time if count > self.policy.allowed(kind) else 0.0

    def cool(self, deployment: str, until: float) -> None:
        if until > self.until.get(deployment, 0.0):
            self.until[deployment] = until

    def remaining(self, deployments: Iterable[str]) -> float | None:
        """Seconds until the first of `deployments` is back, or None if one is not cooling."""
        now = self.clock()
        waits = [self.until.get(d, now) - now for d in deployments]
        return min(waits) if waits and min(waits) > 0 else None

    def failures(self, deployment: str) -> int:
        """Failures within the last minute."""
        fails = self._fails.get(deployment, ())
        now = self.clock()
        return sum(1 for t, _ in fails if t > now - WINDOW)


class RedisCooldowns(Cooldowns):
    """Cooldowns shared by every process on one Redis: written when they start, read back every `POLL_SECONDS`.

    Failures are counted in Redis too (a sorted set per deployment, the last minute), so that failures seen by
    several processes add up to `allowed_fails` as they would in one.
    """

    def __init__(self, policy: RouterPolicy, redis: Any, deployments: Iterable[str]) -> None:
        super().__init__(policy)
        self.redis = redis
        self.deployments = list(deployments)
        self._tasks: set[asyncio.Task[None]] = set()

    def cool(self, deployment: str, until: float) -> None:
        before = self.until.get(deployment, 0.0)
        super().cool(deployment, until)
        if until > before:
            self._spawn(self._write(deployment, until))

    def failed(self, deployment: str, kind: ErrorKind, *, retry_after: float | None = None,
               immediate: bool = False) -> float:  # fmt: skip
        seconds = super().failed(deployment, kind, retry_after=retry_after, immediate=immediate)
        if not seconds:
            self._spawn(self._count(deployment, kind))
        return seconds

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            task = asyncio.get_running_loop().create_task(work)
        except RuntimeError:  # no running loop (a unit test): nothing to share with
            work.close()
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _count(self, deployment: str, kind: ErrorKind) -> None:
        """Add a failure to the shared last-minute window; cool the deployment once it exceeds `allowed_fails`."""
        scope = kind if kind in self.policy.allowed_fails_by_kind else "all"
        key = f"{_FAILS}{deployment}:{scope}"
        now = time.time()
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zadd(key, {uuid.uuid4().hex: now}).zremrangebyscore(key, "-inf", now - WINDOW)
                _, _, count, _ = await pipe.zcard(key).expire(key, int(2 * WINDOW)).execute()
        except (redis_error(), OSError) as exc:
            logger.warning("could not count a failure in Redis (%s); counted in this process", exc)
            return
        if count > self.policy.allowed(kind):
            self.cool(deployment, self.clock() + self.policy.cooldown_time)

    async def _write(self, deployment: str, until: float) -> None:
        seconds = until - self.clock()
        if seconds <= 0:
            return
        try:
            await self.redis.set(_PREFIX + deployment, repr(time.time() + seconds), px=max(1, int(seconds * 1000)))
        except (redis_error(), OSError) as exc:
            logger.warning("could not share a cooldown through Redis (%s); it holds in this process", exc)

    async def read(self) -> None:
        """Take the cooldowns other processes wrote."""
        values = await self.redis.mget([_PREFIX + d for d in self.deployments])
        wall, now = time.time(), self.clock()
        for deployment, raw in zip(self.deployments, values, strict=True):
            if raw is not None:
                super().cool(deployment, now + float(raw) - wall)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Poll Redis while the app runs."""
        task = asyncio.get_running_loop().create_task(self._poll())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await self.redis.aclose()

    async def _poll(self) -> None:
        failing = False
        while True:
            try:
                await self.read()
                failing = False
            except (redis_error(), OSError, ValueError) as exc:
                if not failing:
                    logger.warning("could not read shared cooldowns from Redis (%s); using this process's", exc)
                failing = True
            await anyio.sleep(POLL_SECONDS)
