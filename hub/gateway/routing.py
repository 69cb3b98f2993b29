"""From a public model alias to a deployment and the provider that serves it."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from hub.accounts.auth import Principal
from hub.config import ModelRoute
from hub.errors import NotFound, PermissionDenied, ServiceUnavailable
from providers._http import HttpPool
from providers.base import Provider
from providers.registry import build_provider, provider_family


@dataclass(frozen=True, slots=True)
class Target:
    route: ModelRoute
    provider: Provider


class ModelRouter:
    """Resolves aliases; several deployments under one alias are used in turn (LiteLLM's simple-shuffle)."""

    def __init__(self, models: Mapping[str, tuple[ModelRoute, ...]], pool: HttpPool) -> None:
        self.models = models
        self._providers: dict[str, Provider] = {}
        self._unavailable: dict[str, str] = {}
        for routes in models.values():
            for route in routes:
                family = provider_family(route.deployment.provider)
                if family in self._providers or family in self._unavailable:
                    continue
                try:
                    self._providers[family] = build_provider(route.deployment.provider, pool)
                except ImportError as exc:
                    self._unavailable[family] = str(exc)
        # Deployments whose key variable is unset are skipped while another deployment of the alias can serve.
        self._cycles: dict[str, Iterator[ModelRoute]] = {
            alias: itertools.cycle([r for r in routes if not r.missing_env] or routes)
            for alias, routes in models.items()
        }

    def resolve(self, alias: str, principal: Principal) -> Target:
        """Pick the deployment for `alias`.

        Raises:
            NotFound: no such alias.
            PermissionDenied: the caller's key may not use it.
            ServiceUnavailable: its key variable is unset or its provider cannot be loaded.
        """
        cycle = self._cycles.get(alias)
        if cycle is None:
            raise NotFound(
                f"The model '{alias}' does not exist. Models served here: {', '.join(sorted(self.models)) or 'none'}.",
                code="model_not_found",
                param="model",
            )
        if not principal.may_use_model(alias):
            raise PermissionDenied(
                f"This key may not use the model '{alias}'.", code="model_not_allowed", param="model"
            )
        route = next(cycle)
        if route.missing_env:
            names = ", ".join(route.missing_env)
            raise ServiceUnavailable(
                f"The model '{alias}' is configured but its environment variable {names} is not set on the gateway.",
                code="missing_provider_key",
            )
        family = provider_family(route.deployment.provider)
        provider = self._providers.get(family)
        if provider is None:
            raise ServiceUnavailable(
                f"The provider '{route.deployment.provider}' for model '{alias}' cannot be loaded: "
                f"{self._unavailable.get(family)}",
                code="provider_unavailable",
            )
        return Target(route, provider)
