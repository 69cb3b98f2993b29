"""Which hub tools a chat request gets, and how each is treated.

A request asks for hub tools in two ways:

* OpenAI-style MCP entries in `tools`: `{"type": "mcp", "server_label": "postgres_db", "allowed_tools": [...],
  "require_approval": "never"}`. A missing label or `"*"` means every server the key may use. LiteLLM's form
  `{"type": "mcp", "server_url": "litellm_proxy/mcp/<server>"}` is understood too.
* a per-model default in the config (`model_list[].mcp_servers`), so chat apps that cannot send custom tool types
  (Open WebUI) still get tools just by picking that model.

`require_approval` defaults to `"never"` (a chat app has no way to answer an approval request). A hub tool that needs
approval is not run by the gateway: it is returned to the client as an ordinary tool call, and the client may run it
itself (e.g. through `POST /mcp/tools/call`) and send the result back as a `tool` message.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import mcp_types

from hub.accounts.auth import Principal
from hub.errors import BadRequest, PermissionDenied

JSON = dict[str, Any]


class HubTool(Protocol):
    """A tool as the MCP hub lists it."""

    @property
    def name(self) -> str: ...
    @property
    def server(self) -> str: ...
    @property
    def original_name(self) -> str: ...
    @property
    def description(self) -> str | None: ...
    @property
    def input_schema(self) -> Mapping[str, Any]: ...


class ToolHub(Protocol):
    """What the loop needs from the MCP hub (`state.extras["mcp"]`)."""

    def tools(self, principal: Principal, servers: Collection[str] | None = None) -> Sequence[HubTool]: ...

    async def call_tool(
        self, name: str, arguments: dict[str, Any], principal: Principal, *, timeout: float | None = None
    ) -> mcp_types.CallToolResult: ...

    def server_call_timeout(self, name: str) -> float: ...

    def server_names(self) -> Collection[str]: ...


@dataclass
class LoopPlan:
    """The tools offered to the model, and which of them the gateway runs itself."""

    client_tools: list[JSON]
    hub_tools: dict[str, HubTool]
    approval: set[str] = field(default_factory=set[str])
    """Hub tools that need the client's approval: returned to the client instead of run."""

    def offered(self) -> list[JSON]:
        """Client function tools first, then hub tools as OpenAI function tools."""
        return self.client_tools + [function_tool(t) for t in self.hub_tools.values()]

    def runs(self, name: str) -> bool:
        return name in self.hub_tools and name not in self.approval


def function_tool(tool: HubTool) -> JSON:
    schema = dict(tool.input_schema) if tool.input_schema else {"type": "object", "properties": {}}
    return {
        "type": "function",
        "function": {"name": tool.name, "description": tool.description or "", "parameters": schema},
    }


def plan_tool_loop(
    body: JSON, default_servers: Sequence[str], hub: ToolHub | None, principal: Principal
) -> LoopPlan | None:
    """The loop plan for a request, or None when it asks for no hub tools.

    Raises:
        BadRequest: a malformed MCP entry, an unknown server, or a client tool named like a hub tool.
        PermissionDenied: the key may not use a requested server.
    """
    tools: list[Any] = body.get("tools") or []
    entries = [(i, t) for i, t in enumerate(tools) if isinstance(t, dict) and t.get("type") == "mcp"]
    if not entries and not default_servers:
        return None
    if hub is None:
        raise BadRequest(
            "This request asks for MCP tools, but the gateway has no MCP servers configured.",
            param="tools",
            code="mcp_not_configured",
        )
    client_tools = [t for t in tools if not (isinstance(t, dict) and t.get("type") == "mcp")]
    plan = LoopPlan(client_tools=client_tools, hub_tools={})
    if entries:
        for i, entry in entries:
            _add_entry(plan, hub, principal, i, entry)
    else:
        servers = [s for s in default_servers if principal.may_use_server(s)]
        for tool in hub.tools(principal, servers):
            plan.hub_tools[tool.name] = tool
    clash = {_function_name(t) for t in client_tools} & set(plan.hub_tools)
    if clash:
        raise BadRequest(
            f"Client tool names clash with hub tools: {', '.join(sorted(clash))}.",
            param="tools",
            code="tool_name_conflict",
        )
    return plan


def _function_name(tool: Any) -> str | None:
    function = tool.get("function") if isinstance(tool, dict) else None
    return function.get("name") if isinstance(function, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]


def _add_entry(plan: LoopPlan, hub: ToolHub, principal: Principal, i: int, entry: JSON) -> None:
    label = _server_label(entry, i)
    servers = None if label in (None, "*") else [label]
    if servers is not None:
        known = {t.server for t in hub.tools(principal)} | _all_servers(hub)
        if label not in known:
            raise BadRequest(
                f"No MCP server named '{label}' on this gateway.",
                param=f"tools[{i}].server_label",
                code="unknown_mcp_server",
            )
        if not principal.may_use_server(label):  # pyright: ignore[reportArgumentType]
            raise PermissionDenied(
                f"This key may not use the MCP server '{label}'.",
                param=f"tools[{i}].server_label",
                code="mcp_server_not_allowed",
            )
    allowed = _names(entry.get("allowed_tools"), f"tools[{i}].allowed_tools")
    always, never = _approval(entry.get("require_approval"), i)
    for tool in hub.tools(principal, servers):
        if allowed is not None and tool.name not in allowed and tool.original_name not in allowed:
            continue
        plan.hub_tools[tool.name] = tool
        needs = always if not isinstance(always, set) else (tool.name in always or tool.original_name in always)
        if never is not None and (tool.name in never or tool.original_name in never):
            needs = False
        if needs:
            plan.approval.add(tool.name)


def _all_servers(hub: ToolHub) -> set[str]:
    """Every configured server, healthy or not (a label naming a server that is down is not a client error)."""
    return set(hub.server_names())


def _server_label(entry: JSON, i: int) -> str | None:
    label = entry.get("server_label")
    if label is None and isinstance(url := entry.get("server_url"), str):
        # LiteLLM: "litellm_proxy" (every server) or "litellm_proxy/mcp/<server>"
        head, _, server = url.rstrip("/").partition("/mcp/")
        if head.endswith("litellm_proxy") or head.startswith("/") or head == "":
            return server or None
        raise BadRequest(
            "Only this gateway's own MCP servers can be used (server_url 'litellm_proxy/mcp/<server>').",
            param=f"tools[{i}].server_url",
            code="unsupported_mcp_server",
        )
    if label is not None and not isinstance(label, str):
        raise BadRequest("'server_label' must be a string.", param=f"tools[{i}].server_label", code="invalid_type")
    return label


def _names(value: Any, param: str) -> set[str] | None:
    if value is None:
        return None
    if isinstance(value, dict) and isinstance(value.get("tool_names"), list):  # OpenAI's filter object
        value = value["tool_names"]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):  # pyright: ignore[reportUnknownVariableType]
        raise BadRequest("Expected a list of tool names.", param=param, code="invalid_type")
    return set(value)  # pyright: ignore[reportUnknownArgumentType]


def _approval(value: Any, i: int) -> tuple[bool | set[str], set[str] | None]:
    """(always: everything or these names need approval, never: these names need none)."""
    param = f"tools[{i}].require_approval"
    if value is None or value == "never":
        return False, None
    if value == "always":
        return True, None
    if isinstance(value, dict):
        always = _names(value.get("always"), f"{param}.always") or set()
        never = _names(value.get("never"), f"{param}.never")
        return (always if always else (never is None)), never
    raise BadRequest(
        "'require_approval' must be 'never', 'always' or an object with 'always'/'never' tool names.",
        param=param,
        code="invalid_value",
    )
