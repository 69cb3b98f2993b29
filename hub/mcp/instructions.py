"""The hub's low-level MCP server class: it advertises list changes and names unavailable upstreams in its
instructions, for the caller that initializes."""

from __future__ import annotations

import contextvars
from typing import Any

from mcp.server import NotificationOptions, Server
from mcp.server.models import InitializationOptions

from hub.accounts.auth import Principal
from hub.mcp.hub import McpHub

CALLER: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("toolhub_mcp_caller", default=None)
"""The caller of the HTTP request being served; the SDK handles `initialize` in the sending request's context."""


class HubServer(Server[Any]):
    """A low-level server that advertises `listChanged` (the HTTP manager passes no notification options) and whose
    instructions name the upstreams that are unavailable now, for the caller (`CALLER`) that initializes."""

    _hub: McpHub | None = None
    _view: str | None = None
    _default: Principal | None = None
    _base_instructions: str | None = None

    @property
    def instructions(self) -> str | None:  # pyright: ignore[reportIncompatibleVariableOverride]
        principal = CALLER.get() or self._default
        if self._hub is None or principal is None:
            return self._base_instructions
        return with_unavailable(self._base_instructions, self._hub, principal, self._view)

    @instructions.setter
    def instructions(self, value: str | None) -> None:
        self._base_instructions = value

    def watch(self, hub: McpHub, view: str | None, default: Principal | None) -> None:
        """Name `hub`'s unavailable upstreams (of `view`) in the instructions."""
        self._hub, self._view, self._default = hub, view, default

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        everything = NotificationOptions(tools_changed=True, resources_changed=True, prompts_changed=True)
        return super().create_initialization_options(notification_options or everything, experimental_capabilities,
                                                     extensions)  # fmt: skip


def with_unavailable(base: str | None, hub: McpHub, principal: Principal, view: str | None) -> str | None:
    """`base`, followed by the upstreams this caller may use that are not ready now, each with its state and reason."""
    names = [view] if view is not None else list(hub.upstreams)
    lines = [
        f"- {name}: {u.status.state}" + (f" ({u.status.detail})" if u.status.detail else "")
        for name in names
        if (u := hub.upstreams.get(name)) is not None and not u.healthy and principal.may_use_server(name)
    ]
    if not lines:
        return base
    note = "These MCP servers are unavailable now; their tools are missing until they recover:\n" + "\n".join(lines)
    return f"{base}\n\n{note}" if base else note
