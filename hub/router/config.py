"""The router's keys in LiteLLM's config, and the policy they resolve to.

LiteLLM users put these keys under `router_settings` or `litellm_settings` (both are read; `router_settings` wins).
`hub.config` builds one `RouterPolicy` from them; nothing here reads files or the environment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

Strategy = Literal["simple-shuffle", "least-busy", "latency-based-routing", "usage-based-routing-v2"]
STRATEGIES: tuple[Strategy, ...] = ("simple-shuffle", "least-busy", "latency-based-routing", "usage-based-routing-v2")
ErrorKind = Literal["context_window", "content_policy", "rate_limit", "timeout", "server", "client"]
Chains = Mapping[str, tuple[str, ...]]

# LiteLLM's RetryPolicy / AllowedFailsPolicy field prefixes, by the error kind they mean here.
_POLICY_NAMES: dict[str, ErrorKind] = {
    "BadRequestError": "client",
    "AuthenticationError": "client",
    "TimeoutError": "timeout",
    "RateLimitError": "rate_limit",
    "ContentPolicyViolationError": "content_policy",
    "InternalServerError": "server",
}


class _Keys(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class RetryPolicy(_Keys):
    """LiteLLM's `retry_policy`: retries per error class (client errors are never retried, whatever it says)."""

    BadRequestErrorRetries: int | None = Field(default=None, ge=0, le=10)
    AuthenticationErrorRetries: int | None = Field(default=None, ge=0, le=10)
    TimeoutErrorRetries: int | None = Field(default=None, ge=0, le=10)
    RateLimitErrorRetries: int | None = Field(default=None, ge=0, le=10)
    ContentPolicyViolationErrorRetries: int | None = Field(default=None, ge=0, le=10)
    InternalServerErrorRetries: int | None = Field(default=None, ge=0, le=10)


class AllowedFailsPolicy(_Keys):
    """LiteLLM's `allowed_fails_policy`: failures per minute allowed before a deployment cools, per error class."""

    BadRequestErrorAllowedFails: int | None = Field(default=None, ge=0)
    AuthenticationErrorAllowedFails: int | None = Field(default=None, ge=0)
    TimeoutErrorAllowedFails: int | None = Field(default=None, ge=0)
    RateLimitErrorAllowedFails: int | None = Field(default=None, ge=0)
    ContentPolicyViolationErrorAllowedFails: int | None = Field(default=None, ge=0)
    InternalServerErrorAllowedFails: int | None = Field(default=None, ge=0)


FallbackList = list[dict[str, list[str]]]


class RouterKeys(_Keys):
    """The router keys, as they may appear in `router_settings` and in `litellm_settings`."""

    num_retries: int | None = Field(default=None, ge=0, le=10)
    retry_after: float | None = Field(default=None, ge=0)
    retry_policy: RetryPolicy | None = None
    model_group_retry_policy: dict[str, RetryPolicy] | None = None
    """Per model group, in place of `retry_policy` for the error classes it names."""
    timeout: float | None = Field(default=None, gt=0)
    stream_timeout: float | None = Field(default=None, gt=0)
    allowed_fails: int | None = Field(default=None, ge=0)
    allowed_fails_policy: AllowedFailsPolicy | None = None
    cooldown_time: float | None = Field(default=None, ge=0)
    routing_strategy: str | None = None
    """One of `STRATEGIES`; another of LiteLLM's is reported as ignored and serves as simple-shuffle."""
    fallbacks: FallbackList | None = None
    default_fallbacks: list[str] | None = None
    context_window_fallbacks: FallbackList | None = None
    content_policy_fallbacks: FallbackList | None = None
    max_fallbacks: int | None = Field(default=None, ge=0, le=20)
    redis_host: str | None = None
    """LiteLLM's router Redis (`redis_host`, `redis_port`, `redis_password`): shares cooldowns when
    `general_settings.redis_url` is not set."""
    redis_port: int | None = Field(default=None, gt=0, lt=65536)
    redis_password: str | None = None


@dataclass(frozen=True, slots=True)
class RouterPolicy:
    """How the router retries, cools down, balances and falls back; defaults are LiteLLM's."""

    num_retries: int = 0
    retries_by_kind: Mapping[ErrorKind, int] = field(default_factory=dict[ErrorKind, int])
    retries_by_group: Mapping[str, Mapping[ErrorKind, int]] = field(default_factory=dict[str, Mapping[ErrorKind, int]])
    """`model_group_retry_policy`: a group's own retries per error kind, before `retries_by_kind`."""
    retry_after: float = 0.0
    """Seconds to wait at least before a retry on the same deployment (LiteLLM's `retry_after`)."""
    timeout: float | None = None
    """Seconds for the whole request, retries and fallbacks included (None: only each attempt's own timeout)."""
    allowed_fails: int = 3
    allowed_fails_by_kind: Mapping[ErrorKind, int] = field(default_factory=dict[ErrorKind, int])
    cooldown_time: float = 5.0
    strategy: Strategy = "simple-shuffle"
    fallbacks: Chains = field(default_factory=dict[str, tuple[str, ...]])
    default_fallbacks: tuple[str, ...] = ()
    context_window_fallbacks: Chains = field(default_factory=dict[str, tuple[str, ...]])
    content_policy_fallbacks: Chains = field(default_factory=dict[str, tuple[str, ...]])
    max_fallbacks: int = 5
    background_health_checks: bool = False
    health_check_interval: float = 300.0
    redis_url: str | None = field(default=None, repr=False)
    """From `redis_host`/`redis_port`/`redis_password`; the router uses `general_settings.redis_url` first."""

    def retries(self, kind: ErrorKind, requested: int | None = None, group: str | None = None) -> int:
        """How many retries an error of `kind` in `group` gets (`requested`: the request's own `num_retries`)."""
        if kind in ("client", "context_window"):
            return 0
        by_kind = self.retries_by_kind
        if group is not None and (own := self.retries_by_group.get(group)) and kind in own:
            by_kind = own
        if kind == "content_policy":  # the same content is refused again unless the policy says otherwise
            return by_kind.get(kind, 0)
        if requested is not None:
            return requested
        return by_kind.get(kind, self.num_retries)

    def allowed(self, kind: ErrorKind) -> int:
        return self.allowed_fails_by_kind.get(kind, self.allowed_fails)

    def chain(self, group: str, kind: ErrorKind) -> tuple[str, ...]:
        """The groups to fall back to from `group` after an error of `kind` (empty for client errors)."""
        if kind == "client":
            return ()
        specific = {"context_window": self.context_window_fallbacks, "content_policy": self.content_policy_fallbacks}
        chains = specific.get(kind)
        if chains is not None and group in chains:
            return chains[group][: self.max_fallbacks]
        return self.fallbacks.get(group, self.default_fallbacks)[: self.max_fallbacks]

    def all_chains(self) -> dict[str, dict[str, tuple[str, ...]]]:
        """Every configured chain by its kind, for `check-config` and validation."""
        out = {"fallbacks": dict(self.fallbacks), "context_window_fallbacks": dict(self.context_window_fallbacks),
               "content_policy_fallbacks": dict(self.content_policy_fallbacks)}  # fmt: skip
        if self.default_fallbacks:
            out["default_fallbacks"] = {"*": self.default_fallbacks}
        return out


def router_policy(
    router: RouterKeys, litellm: RouterKeys, *, health_checks: bool, interval: float | None
) -> RouterPolicy:
    """One policy from both sections (`router_settings` first)."""

    def pick(name: str) -> Any:
        value = getattr(router, name)
        return getattr(litellm, name) if value is None else value

    retry = pick("retry_policy")
    fails = pick("allowed_fails_policy")
    return RouterPolicy(
        num_retries=_or(pick("num_retries"), 0),
        retries_by_kind=_by_kind(retry, "Retries"),
        retries_by_group={g: _by_kind(p, "Retries") for g, p in (pick("model_group_retry_policy") or {}).items()},
        retry_after=_or(pick("retry_after"), 0.0),
        timeout=pick("timeout"),
        allowed_fails=_or(pick("allowed_fails"), 3),
        allowed_fails_by_kind=_by_kind(fails, "AllowedFails"),
        cooldown_time=_or(pick("cooldown_time"), 5.0),
        strategy=_strategy(pick("routing_strategy")),
        fallbacks=_chains(pick("fallbacks")),
        default_fallbacks=tuple(_or(pick("default_fallbacks"), [])),
        context_window_fallbacks=_chains(pick("context_window_fallbacks")),
        content_policy_fallbacks=_chains(pick("content_policy_fallbacks")),
        max_fallbacks=_or(pick("max_fallbacks"), 5),
        background_health_checks=health_checks,
        health_check_interval=interval or 300.0,
        redis_url=_redis_url(pick("redis_host"), pick("redis_port"), pick("redis_password")),
    )


def _redis_url(host: str | None, port: int | None, password: str | None) -> str | None:
    if not host:
        return None
    auth = f":{quote(password, safe='')}@" if password else ""
    return f"redis://{auth}{host}:{port or 6379}/0"


def fallback_problems(policy: RouterPolicy, groups: Iterable[str]) -> list[tuple[str, str]]:
    """(key path, problem) for each chain that names an unknown group or closes a cycle."""
    known = set(groups)
    problems: list[tuple[str, str]] = []
    for key, chains in policy.all_chains().items():
        for group, targets in chains.items():
            path = f"router_settings.{key}"
            if group != "*" and group not in known:
                problems.append((path, f"falls back from {group!r}, which is no model_name in model_list"))
            problems += [(path, f"{group!r} falls back to {t!r}, which is no model_name in model_list")
                         for t in targets if t not in known]  # fmt: skip
        cycle = _cycle(chains)
        if cycle:
            problems.append((f"router_settings.{key}", "fallbacks form a cycle: " + " -> ".join(cycle)))
    return problems


def _cycle(chains: Mapping[str, tuple[str, ...]]) -> list[str]:
    """A cycle of groups in `chains` (first found), or []."""
    for start in chains:
        path = [start]
        if found := _walk(chains, path, set()):
            return found
    return []


def _walk(chains: Mapping[str, tuple[str, ...]], path: list[str], seen: set[str]) -> list[str]:
    for nxt in chains.get(path[-1], ()):
        if nxt in path:
            return [*path[path.index(nxt) :], nxt]
        if nxt not in seen:
            seen.add(nxt)
            if found := _walk(chains, [*path, nxt], seen):
                return found
    return []


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _strategy(name: str | None) -> Strategy:
    for strategy in STRATEGIES:
        if strategy == name:
            return strategy
    return "simple-shuffle"


def _by_kind(policy: BaseModel | None, suffix: str) -> dict[ErrorKind, int]:
    out: dict[ErrorKind, int] = {}
    for prefix, kind in _POLICY_NAMES.items():
        value = getattr(policy, prefix + suffix, None) if policy is not None else None
        if value is not None and kind != "client":
            out[kind] = value
    return out


def _chains(raw: FallbackList | None) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for item in raw or ():
        for group, targets in item.items():
            out[group] = tuple(targets)
    return out


def describe(policy: RouterPolicy, groups: Mapping[str, Sequence[Any]]) -> list[str]:
    """`toolhub check-config` lines: the policy, then each group's deployments, strategy and fallback chains."""
    timeout = f"{policy.timeout:g} s" if policy.timeout else "each deployment's own"
    lines = [f"router: {policy.strategy}; num_retries {policy.num_retries}; allowed_fails {policy.allowed_fails} a "
             f"minute, cooldown {policy.cooldown_time:g} s; timeout {timeout}"]  # fmt: skip
    for alias, routes in groups.items():
        orders = sorted({r.order for r in routes if r.order is not None})
        order = f", orders {'/'.join(map(str, orders))}" if len(orders) > 1 else ""
        parts = [f"  {alias}: {len(routes)} deployment{'s' if len(routes) != 1 else ''}{order}"]
        kinds: tuple[tuple[str, ErrorKind], ...] = (
            ("fallbacks", "server"), ("context_window_fallbacks", "context_window"),
            ("content_policy_fallbacks", "content_policy"))  # fmt: skip
        for name, kind in kinds:
            chain = policy.chain(alias, kind)
            if chain and (name == "fallbacks" or chain != policy.chain(alias, "server")):
                parts.append(f"{name} -> {' -> '.join(chain)}")
        lines.append("; ".join(parts))
    return lines
