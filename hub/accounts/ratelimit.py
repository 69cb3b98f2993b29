"""Requests and tokens per minute, per key and per model deployment, over a sliding 60-second window.

`MemoryLimiter` serves one process. `RedisLimiter` shares the windows between Toolhub processes through a Lua script
that checks every limit of a request and counts it, atomically. Requests that arrive while a script call is in flight
are sent together in the next call (one round trip for the batch, each request still checked and counted in order);
token counts are added after the response by a background flush, summed per limit. If Redis fails, the process
falls back to its own memory windows and says so in the log.
"""

from __future__ import annotations

import logging
import math
import sys
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from hub.accounts._batch import BatchFailed, ScriptBatch
from hub.errors import RateLimited

logger = logging.getLogger("toolhub.ratelimit")
WINDOW = 60.0
REDIS_RETRY_SECONDS = 5.0


class _NoRedisError(Exception):
    """Stands for `redis.RedisError` while redis is not imported: no Redis client exists, so none can be raised."""


def redis_error() -> type[Exception]:
    """`redis.exceptions.RedisError` once a Redis client was made, without importing redis (~9 MB) for processes
    that never use it: `except (redis_error(), OSError)` (the expression is evaluated only when something raised)."""
    module = sys.modules.get("redis.exceptions")
    return _NoRedisError if module is None else module.RedisError


def redis_client(url: str) -> Any:
    """A client that fails fast (no retries, short timeouts): a dead Redis must not stall requests."""
    import redis.asyncio as redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))


@dataclass(frozen=True, slots=True)
class Limit:
    """One limited subject: `name` is stable across processes (the Redis key), `label` is for error messages."""

    name: str
    label: str
    rpm: int | None = None
    tpm: int | None = None


def refuse(limit: Limit, what: str, retry_after: float) -> RateLimited:
    seconds = max(1, math.ceil(retry_after))
    value = limit.rpm if what == "rpm" else limit.tpm
    unit = "requests" if what == "rpm" else "tokens"
    return RateLimited(
        f"Rate limit exceeded for {limit.label}: {value} {unit} per minute ({what}_limit). Retry in {seconds} s.",
        code=f"{what}_limit_exceeded",
        headers={"retry-after": str(seconds)},
    )


class _Window:
    __slots__ = ("requests", "tokens", "token_sum")

    def __init__(self) -> None:
        self.requests: deque[float] = deque()
        self.tokens: deque[tuple[float, int]] = deque()
        self.token_sum = 0

    def expire(self, now: float) -> None:
        edge = now - WINDOW
        requests, tokens = self.requests, self.tokens
        while requests and requests[0] <= edge:
            requests.popleft()
        while tokens and tokens[0][0] <= edge:
            self.token_sum -= tokens.popleft()[1]


class MemoryLimiter:
    """Sliding-window counters in this process; check-and-count is atomic because it never awaits."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    def check(self, limits: Sequence[Limit]) -> None:
        """Count one request against every limit, or raise RateLimited (naming the limit) and count nothing."""
        now = self._clock()
        windows = [self._window(limit.name) for limit in limits]
        for limit, window in zip(limits, windows, strict=True):
            window.expire(now)
            if limit.rpm is not None and len(window.requests) >= limit.rpm:
                raise refuse(limit, "rpm", (window.requests[0] + WINDOW - now) if window.requests else WINDOW)
            if limit.tpm is not None and window.token_sum >= limit.tpm:
                raise refuse(limit, "tpm", (window.tokens[0][0] + WINDOW - now) if window.tokens else WINDOW)
        for limit, window in zip(limits, windows, strict=True):
            if limit.rpm is not None:
                window.requests.append(now)

    def add_tokens(self, limits: Sequence[Limit], tokens: int) -> None:
        now = self._clock()
        for limit in limits:
            if limit.tpm is not None and tokens:
                window = self._window(limit.name)
                window.tokens.append((now, tokens))
                window.token_sum += tokens

    def _window(self, name: str) -> _Window:
        window = self._windows.get(name)
        if window is None:
            window = self._windows[name] = _Window()
        return window


# One call checks a batch of requests in order. ARGV: now (ms), then per request: a unique member, its number of limits
# n, then per limit rpm, tpm (-1 = none). KEYS: per request, per limit its request zset then its token zset. Token
# zset members are "<unique>:<tokens>" and "<token zset>:sum" holds their total, so a check costs O(expired
# entries), not O(window). Returns per request {0, 0, 0} (admitted and counted) or {limit index, 1 (rpm) | 2 (tpm),
# retry ms}.
_CHECK = """
local now = tonumber(ARGV[1])
local window = 60000
local out = {}
local a, k = 2, 0
while a <= #ARGV do
  local member, n = ARGV[a], tonumber(ARGV[a + 1])
  a = a + 2
  local index, kind, retry = 0, 0, 0
  for i = 1, n do
    local rk, tk = KEYS[k + 2 * i - 1], KEYS[k + 2 * i]
    local rpm, tpm = tonumber(ARGV[a + 2 * i - 2]), tonumber(ARGV[a + 2 * i - 1])
    if rpm >= 0 then
      redis.call('ZREMRANGEBYSCORE', rk, '-inf', now - window)
      if redis.call('ZCARD', rk) >= rpm then
        local oldest = redis.call('ZRANGE', rk, 0, 0, 'WITHSCORES')
        retry = window
        if oldest[2] then retry = tonumber(oldest[2]) + window - now end
        index, kind = i, 1
        break
      end
    end
    if tpm >= 0 then
      local sk = tk .. ':sum'
      local used = tonumber(redis.call('GET', sk) or '0')
      local expired = redis.call('ZRANGEBYSCORE', tk, '-inf', now - window)
      if #expired > 0 then
        for _, m in ipairs(expired) do
          used = used - tonumber(string.match(m, ':(%d+)$'))
        end
        redis.call('ZREMRANGEBYSCORE', tk, '-inf', now - window)
        if used <= 0 or redis.call('ZCARD', tk) == 0 then used = 0 end
        redis.call('SET', sk, used, 'PX', window)
      end
      if used >= tpm then
        local oldest = redis.call('ZRANGE', tk, 0, 0, 'WITHSCORES')
        retry = window
        if oldest[2] then retry = tonumber(oldest[2]) + window - now end
        index, kind = i, 2
        break
      end
    end
  end
  if index == 0 then
    for i = 1, n do
      if tonumber(ARGV[a + 2 * i - 2]) >= 0 then
        redis.call('ZADD', KEYS[k + 2 * i - 1], now, member)
        redis.call('PEXPIRE', KEYS[k + 2 * i - 1], window)
      end
    end
  end
  out[#out + 1] = index
  out[#out + 1] = kind
  out[#out + 1] = retry
  a = a + 2 * n
  k = k + 2 * n
end
return out
"""


class RedisLimiter:
    """The same windows in Redis, shared by every process pointing at it."""

    def __init__(self, client: Any, *, prefix: str = "toolhub:rl:") -> None:
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_CHECK)
        self._fallback = MemoryLimiter()
        self._tokens: list[tuple[Sequence[Limit], int, float]] = []
        self._wake = anyio.Event()
        self._warned_at = 0.0
        self._down_until = 0.0
        self._boot = uuid.uuid4().hex[:12]
        self._seq = 0
        self._batch = ScriptBatch(self._script, 3, lambda: [int(time.time() * 1000)], (redis_error(), OSError))
        """Requests that arrive while a script call is in flight go together in the next (hub/accounts/_batch.py)."""

    async def check(self, limits: Sequence[Limit]) -> None:
        """Count one request against every limit, or raise RateLimited naming the limit; Redis down: this process's
        own windows."""
        if self._down_until and time.monotonic() < self._down_until:
            self._fallback.check(limits)
            return
        try:
            verdict = await self._batch.call(*self._request(limits))
        except (redis_error(), OSError, BatchFailed) as exc:  # Redis down: keep serving with this process's windows
            self._warn(exc)
            self._fallback.check(limits)
            return
        self._down_until = 0.0
        index, kind, retry_ms = (int(value) for value in verdict)
        if index:
            raise refuse(limits[index - 1], "rpm" if kind == 1 else "tpm", retry_ms / 1000)

    def _request(self, limits: Sequence[Limit]) -> tuple[list[str], list[Any]]:
        keys: list[str] = []
        argv: list[Any] = [self._member(), len(limits)]
        prefix = self._prefix
        for limit in limits:
            keys += [f"{prefix}{limit.name}:r", f"{prefix}{limit.name}:t"]
            argv += [-1 if limit.rpm is None else limit.rpm, -1 if limit.tpm is None else limit.tpm]
        return keys, argv

    def add_tokens(self, limits: Sequence[Limit], tokens: int) -> None:
        if tokens and any(limit.tpm is not None for limit in limits):
            self._tokens.append((limits, tokens, time.time()))
            self._wake.set()

    async def run(self) -> None:
        """Write token counts to Redis in pipelined batches, off the request path."""
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            await self.flush()

    async def flush(self) -> None:
        batch, self._tokens = self._tokens, []
        if not batch:
            return
        totals: dict[str, list[int]] = {}  # per token zset: [tokens, latest ms]; one entry per limit per flush
        for limits, tokens, at in batch:
            for limit in limits:
                if limit.tpm is not None:
                    total = totals.setdefault(f"{self._prefix}{limit.name}:t", [0, 0])
                    total[0] += tokens
                    total[1] = max(total[1], int(at * 1000))
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for key, (tokens, at_ms) in totals.items():
                    pipe.zadd(key, {f"{self._member()}:{tokens}": at_ms})
                    pipe.pexpire(key, int(WINDOW * 1000))
                    pipe.incrby(f"{key}:sum", tokens)
                    pipe.pexpire(f"{key}:sum", int(WINDOW * 1000))
                await pipe.execute()
        except (redis_error(), OSError) as exc:  # Redis down: count the tokens locally instead
            self._warn(exc)
            for limits, tokens, _ in batch:
                self._fallback.add_tokens(limits, tokens)

    def _member(self) -> str:
        self._seq += 1
        return f"{self._boot}{self._seq:x}"

    def _warn(self, exc: BaseException) -> None:
        now = time.monotonic()
        self._down_until = now + REDIS_RETRY_SECONDS  # don't make every request wait on a dead Redis
        if now - self._warned_at > 30:
            self._warned_at = now
            logger.warning("Redis rate limiting failed (%s); using this process's own counters", exc)
