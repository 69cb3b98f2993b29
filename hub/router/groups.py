"""Model groups (the deployments of one `model_name`) and how one deployment is picked for an attempt.

    simple-shuffle          weighted random by `weight`, else `rpm`, else `tpm`; plain round robin without weights
    least-busy              fewest requests in flight in this process (a stream counts until its first chunk)
    latency-based-routing   lowest moving average latency (to the first chunk for streams); untried ones first
    usage-based-routing-v2  fewest tokens this minute among deployments under their `rpm`/`tpm` (this process;
                            streamed answers count as requests, without tokens)

`order` (lower first) is applied before the strategy: a higher order is used only while every deployment of a
lower order is cooling, failed in this request, or unusable (its key variable unset).
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from hub.config import ModelRoute
from hub.router.config import Strategy
from hub.router.cooldown import Cooldowns
from providers._wire.pool import shown_url
from providers.base import Provider

_EWMA = 0.3


@dataclass(eq=False, slots=True)
class Slot:
    """One deployment of a group, with what the strategies and `/health` need to know about it."""

    route: ModelRoute
    id: str
    provider: Provider | None
    unavailable: str | None = None
    """Why its provider module cannot be loaded, if it cannot."""
    inflight: int = 0
    latency: float | None = None
    minute: int = 0
    requests: int = 0
    tokens: int = 0
    successes: int = 0
    failures: int = 0
    retries: int = 0
    fallbacks: int = 0
    """Attempts that answered, failed, were retried, and answered as a fallback, since start (for `/metrics`)."""
    headers: dict[str, str] = field(default_factory=dict[str, str])
    """The `x-litellm-*` headers of a request this deployment answered at the first attempt (built once)."""
    shown_base: str = ""
    """`api_base` as clients, metrics, logs and the console may see it: without credentials or a query."""

    def __post_init__(self) -> None:
        self.shown_base = base = shown_url(self.route.deployment.api_base or "")
        self.headers = {"x-litellm-model-group": self.route.alias, "x-litellm-attempted-retries": "0",
                        "x-litellm-attempted-fallbacks": "0", "x-litellm-model-api-base": base,
                        "x-litellm-model-id": self.id}  # fmt: skip

    @property
    def usable(self) -> bool:
        return self.provider is not None and not self.route.missing_env

    def observe(self, seconds: float) -> None:
        self.latency = seconds if self.latency is None else self.latency + _EWMA * (seconds - self.latency)

    def count(self, tokens: int, requests: int = 0) -> None:
        minute = int(time.time() // 60)
        if minute != self.minute:
            self.minute, self.requests, self.tokens = minute, 0, 0
        self.requests += requests
        self.tokens += tokens


def slot_id(route: ModelRoute, index: int) -> str:
    """A deployment id that is the same in every process serving the same config (the Redis cooldown key)."""
    d = route.deployment
    raw = f"{route.alias}\0{index}\0{d.provider}\0{d.model}\0{d.api_base}".encode()
    return hashlib.sha256(raw).hexdigest()[:16]


class Group:
    """The deployments of one model group and the strategy that picks among them."""

    def __init__(self, alias: str, slots: Sequence[Slot], strategy: Strategy, rng: random.Random | None = None) -> None:
        self.alias = alias
        self.slots = tuple(slots)
        self.usable = tuple(s for s in self.slots if s.usable)
        self.strategy = strategy
        self.timed = strategy == "latency-based-routing"
        """Attempts are timed only for the strategy that uses the times."""
        self.counted = strategy == "usage-based-routing-v2"
        self._rng = rng or random.Random()
        self._turn = 0
        self._ordered = len({_rank(s) for s in self.usable}) > 1
        self._weights = _weights(self.usable)
        self._choose: Callable[[Sequence[Slot]], Slot] = getattr(self, "_" + strategy.replace("-", "_"))

    def pick(self, cooldowns: Cooldowns, exclude: Collection[Slot] = ()) -> Slot | None:
        """The deployment for the next attempt, or None when every usable one is cooling or excluded."""
        candidates = self.usable
        if cooldowns.until or exclude:
            now = cooldowns.clock()
            candidates = tuple(s for s in candidates if s not in exclude and not cooldowns.cooling(s.id, now))
        if not candidates:
            return None
        if self._ordered:
            first = min(_rank(s) for s in candidates)
            candidates = tuple(s for s in candidates if _rank(s) == first)
        if len(candidates) == 1:
            return candidates[0]
        return self._choose(candidates)

    def _next_turn(self) -> int:
        turn = self._turn
        self._turn = turn + 1
        return turn

    def _simple_shuffle(self, candidates: Sequence[Slot]) -> Slot:
        if self._weights is None:
            return candidates[self._next_turn() % len(candidates)]
        weights = [self._weights.get(s.id, 1.0) for s in candidates]
        return self._rng.choices(candidates, weights)[0]

    def _least_busy(self, candidates: Sequence[Slot]) -> Slot:
        start = self._next_turn()
        rotated = [candidates[(start + i) % len(candidates)] for i in range(len(candidates))]
        return min(rotated, key=lambda s: s.inflight)

    def _latency_based_routing(self, candidates: Sequence[Slot]) -> Slot:
        untried = [s for s in candidates if s.latency is None]
        if untried:
            return untried[self._next_turn() % len(untried)]
        return min(candidates, key=lambda s: s.latency or 0.0)

    def _usage_based_routing_v2(self, candidates: Sequence[Slot]) -> Slot:
        minute = int(time.time() // 60)
        for slot in candidates:
            slot.count(0)  # a new minute starts from zero
        under = [s for s in candidates if _under_limits(s)] or list(candidates)
        start = self._next_turn()
        rotated = [under[(start + i) % len(under)] for i in range(len(under))]
        return min(rotated, key=lambda s: s.tokens if s.minute == minute else 0)


def _rank(slot: Slot) -> int:
    """`order`, with deployments that set none after those that do."""
    order = slot.route.order
    return (1 << 30) if order is None else order


def _under_limits(slot: Slot) -> bool:
    rpm, tpm = slot.route.rpm, slot.route.tpm
    return (rpm is None or slot.requests < rpm) and (tpm is None or slot.tokens < tpm)


def _weights(slots: Sequence[Slot]) -> dict[str, float] | None:
    """Weights by `weight`, else `rpm`, else `tpm` (LiteLLM's simple-shuffle); None when none is set."""
    for get in (lambda r: r.weight, lambda r: r.rpm, lambda r: r.tpm):
        values = {s.id: get(s.route) for s in slots}
        if any(v is not None for v in values.values()):
            return {k: float(v) if v is not None else 1.0 for k, v in values.items()}
    return None
