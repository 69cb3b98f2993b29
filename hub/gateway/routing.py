"""From a public model alias to the router call that serves it (the router itself is `hub.router`)."""

from __future__ import annotations

from collections.abc import Iterable
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
            NotFound: no such alias (for a caller that may use every model).
            PermissionDenied: the caller's key may not use it, or (for a key limited to some models) no such alias.
            ServiceUnavailable: its key variable is unset or its provider cannot be loaded.
            BadRequest: malformed router options in `body`.
        """
        group = self.groups.get(alias)
        if group is None or not principal.may_use_model(alias):
            raise model_refusal(alias, principal, self.models)
        return self.target(group, principal, body)


def model_refusal(alias: str, principal: Principal, served: Iterable[str]) -> NotFound | PermissionDenied:
    """The error for a model a caller cannot use. A key limited to some models gets one answer whether `alias`
    exists or not, naming only the models it may use: what else the gateway serves is none of its business."""
    if principal.models is not None:
        usable = ", ".join(sorted(principal.models.intersection(served))) or "none"
        message = f"This key may not use the model '{alias}'. Models it may use: {usable}."
        return PermissionDenied(message, code="model_not_allowed", param="model")
    return NotFound(
        f"The model '{alias}' does not exist. Models served here: {', '.join(sorted(served)) or 'none'}.",
        code="model_not_found",
        param="model",
    )
