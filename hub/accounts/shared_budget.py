"""Budget holds in Redis, shared by every Toolhub process that points at it.

Per key and budget period, three Redis keys: a hash with `spent` and `reserved`, a sorted set of the holds in flight
(scored by when each expires) and a hash of their amounts. One Lua script checks and holds atomically, for all the
requests that arrived while the previous call was in flight (`hub.accounts._batch`); a second settles a batch of
finished requests (release the hold, add the real cost), sent off the request path. Each process
renews its live holds every `hold_ttl / 4` seconds, so the holds of a process that died expire within `hold_ttl`.

`spent` in Redis is raised to what the asking process knows (its own charges and the store's spend logs, which the
key refresh reads), so a Redis that lost its data, or missed settlements while it was down, catches up. While Redis
fails, each process holds in its own memory (`Account.reserve`) and says so in the log.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import anyio

from hub.accounts._batch import ScriptBatch
from hub.accounts.budget import Hold
from hub.accounts.ratelimit import redis_error
from hub.accounts.spend import Account, held_refusal

logger = logging.getLogger("toolhub.budget")
RETRY_SECONDS = 5.0
STATE_TTL = 86_400.0
"""Seconds a key's budget state stays in Redis after its last use (it is rebuilt from the store after that)."""

# A batch of holds, in order. ARGV: now ms, hold expiry ms, then per request: hold id, amount, budget, known spent,
# state ttl ms; KEYS per request: state hash, holds zset, amounts hash. Returns per request {verdict (0 held,
# 1 budget spent, 2 held by others), spent, reserved, holds}.
_RESERVE = """
local now, expires = tonumber(ARGV[1]), ARGV[2]
local out = {}
for r = 1, #KEYS / 3 do
  local st, hz, ha = KEYS[3 * r - 2], KEYS[3 * r - 1], KEYS[3 * r]
  local a = 2 + 5 * (r - 1)
  local id, amount, budget = ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local dead = redis.call('ZRANGEBYSCORE', hz, '-inf', now)
  for _, d in ipairs(dead) do
    redis.call('HINCRBYFLOAT', st, 'reserved', -tonumber(redis.call('HGET', ha, d) or '0'))
    redis.call('HDEL', ha, d)
  end
  if #dead > 0 then redis.call('ZREMRANGEBYSCORE', hz, '-inf', now) end
  local spent = math.max(tonumber(redis.call('HGET', st, 'spent') or '0'), tonumber(ARGV[a + 4]))
  local holds = redis.call('ZCARD', hz)
  local reserved = 0
  if holds > 0 then reserved = tonumber(redis.call('HGET', st, 'reserved') or '0') end
  local verdict = 0
  if spent >= budget then
    verdict = 1
  elseif holds > 0 and spent + reserved + amount > budget then
    verdict = 2
  else
    redis.call('ZADD', hz, expires, id)
    redis.call('HSET', ha, id, ARGV[a + 2])
    reserved = reserved + amount
    holds = holds + 1
  end
  local s, v = string.format('%.17g', spent), string.format('%.17g', reserved)
  redis.call('HSET', st, 'spent', s, 'reserved', v)
  for i = 3 * r - 2, 3 * r do redis.call('PEXPIRE', KEYS[i], ARGV[a + 5]) end
  out[#out + 1] = verdict
  out[#out + 1] = s
  out[#out + 1] = v
  out[#out + 1] = holds
end
return out
"""

# Per settlement: KEYS its three keys, ARGV its hold id and cost. The cost is added even if the hold had expired.
_SETTLE = """
for i = 1, #ARGV / 2 do
  local st, hz, ha = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local id, cost = ARGV[2 * i - 1], ARGV[2 * i]
  local amount = redis.call('HGET', ha, id)
  if amount then
    redis.call('HDEL', ha, id)
    redis.call('ZREM', hz, id)
    if redis.call('ZCARD', hz) == 0 then
      redis.call('HSET', st, 'reserved', '0')
    else
      redis.call('HINCRBYFLOAT', st, 'reserved', -tonumber(amount))
    end
  end
  if tonumber(cost) > 0 then redis.call('HINCRBYFLOAT', st, 'spent', cost) end
end
return #ARGV / 2
"""


class RedisBudgets:
    """The `Budgets` of processes sharing a Redis."""

    def __init__(self, client: Any, *, prefix: str = "toolhub:budget:", hold_ttl: float = 120.0) -> None:
        self._client = client
        self._prefix = prefix
        self.hold_ttl = hold_ttl
        self._reserve = ScriptBatch(client.register_script(_RESERVE), 4, self._head, (redis_error(), OSError))
        self._settle = client.register_script(_SETTLE)
        self._live: dict[str, Hold] = {}
        self._settled: list[tuple[Hold, float]] = []
        self._unsent: dict[str, float] = {}
        """Per budget state key: costs charged to the account here but not yet added in Redis. The known spent a
        reserve sends leaves them out, or the script would raise Redis to them and their settlement add them again."""
        self._wake = anyio.Event()
        self._boot = uuid.uuid4().hex[:12]
        self._seq = 0
        self._down_until = 0.0
        self._warned_at = 0.0

    async def reserve(self, token_hash: str, account: Account, amount: float) -> Hold:
        account.check()  # known to be spent: no round trip
        if amount <= 0 or (self._down_until and time.monotonic() < self._down_until):
            account.reserve(amount)
            return Hold(account, amount)
        hold = Hold(account, amount, self._member(), self._keys(token_hash, account))
        unsent = self._unsent.get(hold.keys[0], 0.0)
        args = [hold.id, repr(amount), repr(account.max_budget), repr(account.spent - unsent),
                int(self._state_ttl(account, time.time()) * 1000)]  # fmt: skip
        reply: list[Any] = [1, 0, 0, 0]
        try:
            with anyio.CancelScope(shield=True):  # a hold made in Redis must be known here, to be settled
                reply = await self._reserve.call(list(hold.keys), args)
        except (redis_error(), OSError) as exc:
            self._warn(exc)
            account.reserve(amount)
            return Hold(account, amount)
        self._down_until = 0.0
        verdict, spent, reserved, holds = reply
        # not plus this process's unsent costs: the reply may already hold a settlement whose call has not returned
        account.spent = max(account.spent, float(spent))
        if int(verdict) == 1:
            account.check()
        if int(verdict) == 2:
            raise held_refusal(account, float(spent), float(reserved), int(holds), amount)
        self._live[hold.id] = hold
        return hold

    def _head(self) -> list[Any]:
        now = time.time()
        return [int(now * 1000), int((now + self.hold_ttl) * 1000)]

    def settle(self, hold: Hold, cost: float) -> None:
        if hold.done:
            return
        hold.done = True
        hold.account.charge(cost)
        if not hold.keys:
            hold.account.release(hold.amount)
            return
        self._live.pop(hold.id, None)
        self._settled.append((hold, cost))
        self._unsent[hold.keys[0]] = self._unsent.get(hold.keys[0], 0.0) + cost
        self._wake.set()

    async def run(self) -> None:
        """Send settlements as they come and renew the live holds, off the request path."""
        renew_every = self.hold_ttl / 4
        renewed = time.monotonic()
        while True:
            with anyio.move_on_after(renew_every):
                await self._wake.wait()
            self._wake = anyio.Event()
            await self.flush()
            if time.monotonic() - renewed >= renew_every:
                renewed = time.monotonic()
                await self.renew()

    async def flush(self) -> None:
        batch, self._settled = self._settled, []
        for start in range(0, len(batch), 256):
            part = batch[start : start + 256]
            keys = [key for hold, _ in part for key in hold.keys]
            args = [value for hold, cost in part for value in (hold.id, repr(cost))]
            try:
                await self._settle(keys=keys, args=args)
            except (redis_error(), OSError) as exc:  # the holds expire; `spent` catches up from the next reserve
                self._warn(exc)
            finally:
                self._sent(part)

    def _sent(self, part: list[tuple[Hold, float]]) -> None:
        """The settlement of `part` went (or failed: then the next reserve's known spent carries the costs)."""
        for hold, cost in part:
            left = self._unsent.pop(hold.keys[0], 0.0) - cost
            if left > 1e-12:
                self._unsent[hold.keys[0]] = left

    async def renew(self) -> None:
        if not self._live:
            return
        expires = int((time.time() + self.hold_ttl) * 1000)
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for hold in list(self._live.values()):
                    pipe.zadd(hold.keys[1], {hold.id: expires}, xx=True)
                await pipe.execute()
        except (redis_error(), OSError) as exc:
            self._warn(exc)

    def _keys(self, token_hash: str, account: Account) -> tuple[str, ...]:
        base = f"{self._prefix}{token_hash}:{int(account.period_start)}"
        return base, f"{base}:holds", f"{base}:amounts"

    @staticmethod
    def _state_ttl(account: Account, now: float) -> float:
        reset = account.reset_at
        return STATE_TTL if reset is None else max(60.0, min(STATE_TTL, reset - now + 60.0))

    def _member(self) -> str:
        self._seq += 1
        return f"{self._boot}{self._seq:x}"

    def _warn(self, exc: BaseException) -> None:
        now = time.monotonic()
        self._down_until = now + RETRY_SECONDS
        if now - self._warned_at > 30:
            self._warned_at = now
            logger.warning("Redis budget holds failed (%s); holding in this process's memory", exc)
