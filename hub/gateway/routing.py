"""From a public model alias to the router call that serves it (the router itself is `hub.router`)."""

from __future__ import annotations

from typing import Any

from hub.accounts.auth import Principal
from hub.errors import NotFound, PermissionDenied
from hub.router.router import Router, Target

__all__ = ["ModelRouter", "Target"]


class ModelRouter(Router):
    """Resolves aliases; deployments, retries, cooldowns and fallbacks are `hub.router`'s."""

    def resolve(self, alias: str, principal: Principal, body: dict[str, Any] | None = None) -> Target:
        """Start a request for `alias` (`body`: its router options, e.g. `fallbacks`, are taken out of it).

        Raises:
            NotFound: no such alias.
            PermissionDenied: the caller's key may not use it.
            ServiceUnavailable: its key variable is unset or its provider cannot be loaded.
            BadRequest: malformed router options in `body`.
        """
        group = self.groups.get(alias)
        if group is None:
            raise NotFound(
                f"The model '{alias}' does not exist. Models served here: {', '.join(sorted(self.models)) or 'none'}.",
                code="model_not_found",
                param="model",
            )
        if not principal.may_use_model(alias):
            raise PermissionDenied(
                f"This key may not use the model '{alias}'.", code="model_not_allowed", param="model"
            )
        return self.target(group, principal, body)
