"""The router: model groups with their deployments and providers, cooldowns, and the start of each request."""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Self

from hub.accounts.auth import Principal
from hub.accounts.ratelimit import redis_client
from hub.config import Config, ModelRoute
from hub.errors import BadRequest, ServiceUnavailable
from hub.router.call import NO_OPTIONS, Options, RoutedCall
from hub.router.config import RouterPolicy
from hub.router.cooldown import Cooldowns, RedisCooldowns
from hub.router.groups import Group, Slot, slot_id
from providers._http import HttpPool
from providers.base import Provider
from providers.registry import build_provider, provider_family

REQUEST_KEYS = frozenset({"fallbacks", "num_retries", "timeout", "mock_testing_fallbacks"})
"""Body keys the router takes out of a request (LiteLLM's per-request router options); never sent upstream."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where a request starts: its first deployment, and the Provider-shaped call that routes every attempt."""

    route: ModelRoute
    provider: RoutedCall


class Router:
    """Every model group of the config, and the state shared by all requests (cooldowns, per-deployment stats)."""

    def __init__(
        self,
        models: Mapping[str, tuple[ModelRoute, ...]],
        pool: HttpPool,
        policy: RouterPolicy | None = None,
        *,
        redis: Any = None,
        rng: random.Random | None = None,
    ) -> None:
        self.models = models
        self.policy = policy = policy or RouterPolicy()
        self.pool = pool
        providers, unavailable = _providers(models, pool)
        self.groups: dict[str, Group] = {}
        for alias, routes in models.items():
            slots = [_slot(route, i, providers, unavailable) for i, route in enumerate(routes)]
            self.groups[alias] = Group(alias, slots, policy.strategy, rng)
        ids = [slot.id for group in self.groups.values() for slot in group.slots]
        self.cooldowns = Cooldowns(policy) if redis is None else RedisCooldowns(policy, redis, ids)

    @classmethod
    def from_config(cls, config: Config, pool: HttpPool) -> Self:
        """The router a config describes; cooldowns are shared through Redis when `redis_url` is set."""
        url = config.redis_url or config.router.redis_url
        redis = redis_client(url) if url else None
        return cls(config.models, pool, config.router, redis=redis)

    def target(self, group: Group, principal: Principal, body: dict[str, Any] | None = None) -> Target:
        """Start a request on `group`: its first deployment and the call that routes it.

        Raises:
            ServiceUnavailable: no deployment of the group can be used (a key variable unset, a provider missing).
            BadRequest: the body's router options are malformed or name models the caller may not use.
        """
        options = NO_OPTIONS
        if body is not None and not REQUEST_KEYS.isdisjoint(body):
            options = self._options(body, principal)
        if not group.usable:
            raise _unusable(group)
        first = group.pick(self.cooldowns)
        may_use = None if principal.models is None else principal.may_use_model
        return Target((first or group.usable[0]).route, RoutedCall(self, group, first, options, may_use))

    def _options(self, body: dict[str, Any], principal: Principal) -> Options:
        fallbacks = body.pop("fallbacks", None)
        retries = body.pop("num_retries", None)
        timeout = body.pop("timeout", None)
        mock = body.pop("mock_testing_fallbacks", False)
        if fallbacks is not None and (
            not isinstance(fallbacks, list) or not all(isinstance(f, str) for f in fallbacks)
        ):
            raise BadRequest("'fallbacks' must be a list of model names.", param="fallbacks", code="invalid_value")
        for name in fallbacks or ():
            if name not in self.groups or not principal.may_use_model(name):
                raise BadRequest(
                    f"'fallbacks' names {name!r}, which is not a model this key can use.",
                    param="fallbacks", code="invalid_value",
                )  # fmt: skip
        if retries is not None and (type(retries) is not int or not 0 <= retries <= 10):
            raise BadRequest(
                "'num_retries' must be an integer from 0 to 10.", param="num_retries", code="invalid_value"
            )
        if timeout is not None and (type(timeout) not in (int, float) or not 0 < timeout <= 3600):
            raise BadRequest(
                "'timeout' must be a number of seconds (0 to 3600).", param="timeout", code="invalid_value"
            )
        if type(mock) is not bool:
            raise BadRequest("'mock_testing_fallbacks' must be true or false.", param="mock_testing_fallbacks",
                             code="invalid_value")  # fmt: skip
        return Options(None if fallbacks is None else tuple(fallbacks), retries, timeout, mock)

    @contextlib.asynccontextmanager
    async def running(self, extras: dict[str, Any] | None = None) -> AsyncIterator[None]:
        """Background work while the app runs: shared cooldowns (Redis), health checks, `/metrics` series."""
        from hub.router.health import RouterCollector, health_loop

        metrics = (extras or {}).get("metrics")
        async with contextlib.AsyncExitStack() as stack:
            if metrics is not None:  # a reloaded config's router replaces this one's series
                collector = RouterCollector(self)
                metrics.registry.register(collector)
                stack.callback(metrics.registry.unregister, collector)
            if isinstance(self.cooldowns, RedisCooldowns):
                await stack.enter_async_context(self.cooldowns.running())
            if self.policy.background_health_checks:
                await stack.enter_async_context(health_loop(self))
            yield

    def slots(self) -> list[tuple[Group, Slot]]:
        return [(group, slot) for group in self.groups.values() for slot in group.slots]


def _providers(
    models: Mapping[str, tuple[ModelRoute, ...]], pool: HttpPool
) -> tuple[dict[str, Provider], dict[str, str]]:
    providers: dict[str, Provider] = {}
    unavailable: dict[str, str] = {}
    for routes in models.values():
        for route in routes:
            family = provider_family(route.deployment.provider)
            if family in providers or family in unavailable:
                continue
            try:
                providers[family] = build_provider(route.deployment.provider, pool)
            except ImportError as exc:
                unavailable[family] = str(exc)
    return providers, unavailable


def _slot(route: ModelRoute, index: int, providers: dict[str, Provider], unavailable: dict[str, str]) -> Slot:
    family = provider_family(route.deployment.provider)
    return Slot(route, slot_id(route, index), providers.get(family), unavailable.get(family))


def _unusable(group: Group) -> ServiceUnavailable:
    """Why no deployment of `group` can serve: the first one's missing variables or provider."""
    route = group.slots[0].route
    if route.missing_env:
        names = ", ".join(route.missing_env)
        return ServiceUnavailable(
            f"The model '{group.alias}' is configured but its environment variable {names} is not set on the gateway.",
            code="missing_provider_key",
        )
    return ServiceUnavailable(
        f"The provider '{route.deployment.provider}' for model '{group.alias}' cannot be loaded: "
        f"{group.slots[0].unavailable}",
        code="provider_unavailable",
    )
