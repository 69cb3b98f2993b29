"""Which hub tools a chat request gets, and how each call the model makes is treated.

A request asks for hub tools in two ways:

* OpenAI-style MCP entries in `tools`: `{"type": "mcp", "server_label": "postgres_db", "allowed_tools": [...],
  "require_approval": "never"}`. A missing label or `"*"` means every server the key may use. LiteLLM's form
  `{"type": "mcp", "server_url": "litellm_proxy/mcp/<server>"}` is understood too.
* a per-model default in the config (`model_list[].mcp_servers`), so chat apps that cannot send custom tool types
  (Open WebUI) still get tools just by picking that model.

`require_approval` must be `"never"` (the default): chat completions have no way to ask the client for an approval,
so an entry that needs one is refused with a 400 that says so (approval items come with the Responses API).

A model call is the gateway's to run when it names an offered hub tool, the client's when it names a client tool,
and otherwise, when its name is in a hub server's namespace (`<server>__<tool>`), an error result for the model
(server down or still starting, not allowed for the key, not offered): such a call never reaches the client.
A client tool may therefore not be named like a hub tool nor like one of the hub's meta-tools (`hub__search_tools`
& co., hub/catalog), which the gateway answers itself: a 400 `tool_name_conflict`.

A server the key may not use is refused exactly as one that does not exist (400 `unknown_mcp_server`), so a scoped
key learns nothing of the other servers by guessing their names.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import mcp_types

from hub.accounts.auth import Principal
from hub.catalog.dispatch import is_meta
from hub.catalog.index import Searchable
from hub.catalog.meta import META_NAMES, function_tool
from hub.errors import BadRequest
from hub.loop.memory import RoundMemory

JSON = dict[str, Any]
CallKind = Literal["hub", "client", "unavailable"]


HubTool = Searchable
"""A tool as the MCP hub lists it (`hub.mcp.catalog.ToolInfo`)."""


class ToolHub(Protocol):
    """What the loop needs from the MCP hub (`state.extras["mcp"]`)."""

    separator: str

    def tools(self, principal: Principal, servers: Collection[str] | None = None) -> Sequence[HubTool]: ...

    async def call_tool(
        self,
        name: str,
        arguments: dict[str, Any],
        principal: Principal,
        *,
        timeout: float | None = None,
        request_id: str = "",
    ) -> mcp_types.CallToolResult: ...

    def server_call_timeout(self, name: str) -> float: ...

    def server_names(self) -> Collection[str]: ...

    def prefixes(self) -> Mapping[str, str]: ...

    async def wait_started(self, servers: Collection[str]) -> None: ...


@dataclass
class LoopPlan:
    """The tools offered to the model, and whose each call of the model is."""

    client_tools: list[JSON]
    hub_tools: dict[str, HubTool]
    unavailable: dict[str, str] = field(default_factory=dict[str, str])
    """Namespace prefix (`<server>__`) -> why that server's tools are not offered, for the model."""
    memory: RoundMemory | None = None
    """Hub rounds kept between turns when a loop ends with client tool calls (`hub.loop.memory`)."""
    owner: str = ""
    """Whose conversation this is (key id or alias): kept hub rounds are restored only for the same key."""
    client_names: set[str] = field(default_factory=set[str])
    catalog: Any = None
    """The process's `hub.catalog.service.CatalogService`: search mode, large results stored (hub/catalog)."""
    reading: bool = False
    """The conversation holds a stored result: `hub__read_result` is offered from then on."""
    provider: str | None = None
    """The provider of the model the request is routed to (`openai`: 128 tools at most), for search mode."""

    def __post_init__(self) -> None:
        self.client_names = {name for t in self.client_tools if (name := _function_name(t))}

    def offered(self) -> list[JSON]:
        """Client function tools first, then hub tools as OpenAI function tools (or the search meta-tools)."""
        if self.catalog is not None:  # every hub tool, or the search meta-tools: the same bytes every turn
            hub = self.catalog.loop_tools(list(self.hub_tools.values()), self.reading, self.provider,
                                          len(self.client_tools))  # fmt: skip
            return self.client_tools + hub
        return self.client_tools + [function_tool(t) for t in self.hub_tools.values()]

    def kind(self, name: str) -> CallKind:
        """Who answers a call of `name`: the gateway, the client, or the gateway with an error result."""
        if name in self.hub_tools or (self.catalog is not None and is_meta(name)):
            return "hub"
        if name in self.client_names or self.why_unavailable(name) is None:
            return "client"
        return "unavailable"

    def why_unavailable(self, name: str) -> str | None:
        """The error result for a call in a hub namespace whose tool is not offered; None outside the namespaces."""
        for prefix, reason in self.unavailable.items():
            if name.startswith(prefix):
                return f"The tool {name!r} is not available: {reason}."
        return None


MEMORY_KEY = "tool_loop_memory"


async def prepare_tool_loop(
    body: JSON, default_servers: Sequence[str], extras: MutableMapping[str, Any], principal: Principal
) -> LoopPlan | None:
    """`plan_tool_loop` once the servers the request names made their first connection attempt.

    A server still starting (the gateway just started, or it was added) is waited for, at most its `connect_timeout`,
    so that an early request gets its tools. `extras` is the app's `state.extras` (the hub, and the round memory).
    """
    tools: list[Any] = body.get("tools") or []
    entries = [(i, t) for i, t in enumerate(tools) if isinstance(t, dict) and t.get("type") == "mcp"]
    if not entries and not default_servers:
        return None  # the common case: no hub tools, nothing to wait for
    hub: ToolHub | None = extras.get("mcp")
    if hub is not None:
        await hub.wait_started(_named_servers(entries, default_servers, hub, principal))
    plan = plan_tool_loop(body, default_servers, hub, principal)
    if plan is not None and (catalog := extras.get("catalog")) is not None:  # search mode, result handles
        plan.catalog, plan.reading = catalog, catalog.holds_results(body.get("messages"))
    if plan is not None:
        memory = extras.get(MEMORY_KEY)
        if memory is None:  # not `or`: an empty RoundMemory is falsy, and one is made once per process
            memory = extras[MEMORY_KEY] = RoundMemory()
        plan.memory = memory
    return plan


def _named_servers(
    entries: list[tuple[int, JSON]], defaults: Sequence[str], hub: ToolHub, principal: Principal
) -> list[str]:
    labels = {_server_label(e, i) for i, e in entries} if entries else set(defaults)
    if None in labels or "*" in labels:
        labels = set(hub.server_names())
    return [s for s in hub.server_names() if s in labels and principal.may_use_server(s)]


def plan_tool_loop(
    body: JSON, default_servers: Sequence[str], hub: ToolHub | None, principal: Principal
) -> LoopPlan | None:
    """The loop plan for a request, or None when it asks for no hub tools.

    Raises:
        BadRequest: a malformed MCP entry, an unknown server or one the key may not use, an entry that needs
            approval, or a client tool named like a hub tool or meta-tool.
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
    plan = LoopPlan(client_tools=client_tools, hub_tools={}, owner=principal.owner)
    if entries:
        for i, entry in entries:
            _add_entry(plan, hub, principal, i, entry)
    else:
        servers = [s for s in default_servers if principal.may_use_server(s)]
        for tool in hub.tools(principal, servers):
            plan.hub_tools[tool.name] = tool
    clash = plan.client_names & (set(plan.hub_tools) | set(META_NAMES))  # `kind` gives meta-tool calls to the hub
    if clash:
        raise BadRequest(
            f"Client tool names clash with hub tools: {', '.join(sorted(clash))}.",
            param="tools",
            code="tool_name_conflict",
        )
    plan.unavailable = _unavailable(plan, hub, principal)
    return plan


def _unavailable(plan: LoopPlan, hub: ToolHub, principal: Principal) -> dict[str, str]:
    """Every hub namespace, with the reason a tool in it that the plan does not offer cannot be called."""
    up = {tool.server for tool in hub.tools(principal)}
    reasons: dict[str, str] = {}
    for server, prefix in sorted(hub.prefixes().items(), key=lambda item: -len(item[1])):  # longest prefix first
        if not principal.may_use_server(server):
            reasons[prefix] = "no such tool is available to this request"  # says nothing of servers the key lacks
        elif server not in up:
            reasons[prefix] = f"the MCP server {server!r} is not connected (down or still starting)"
        else:
            reasons[prefix] = "it is not among the tools offered in this request"
    return reasons


def _function_name(tool: Any) -> str | None:
    if not isinstance(tool, dict):
        return None
    function = tool.get("function") or tool.get("custom")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    name = function.get("name") if isinstance(function, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    return name if isinstance(name, str) else None


def _add_entry(plan: LoopPlan, hub: ToolHub, principal: Principal, i: int, entry: JSON) -> None:
    label = _server_label(entry, i)
    servers = None if label in (None, "*") else [label]
    if label is not None and servers is not None and not _available(hub, principal, label):
        raise BadRequest(  # the same answer whether the server exists or not: names are not for every key
            f"No MCP server named '{label}' is available to this key.",
            param=f"tools[{i}].server_label",
            code="unknown_mcp_server",
        )
    allowed = _names(entry.get("allowed_tools"), f"tools[{i}].allowed_tools")
    unapproved = _check_approval(entry.get("require_approval"), i)
    for tool in hub.tools(principal, servers):
        if not (_listed(tool, allowed) and _listed(tool, unapproved)):
            continue
        plan.hub_tools[tool.name] = tool


def _listed(tool: HubTool, names: set[str] | None) -> bool:
    return names is None or tool.name in names or tool.original_name in names


def _available(hub: ToolHub, principal: Principal, label: str) -> bool:
    """Whether `label` names a configured server the key may use (one that is down is no client error)."""
    return principal.may_use_server(label) and label in set(hub.server_names())


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


APPROVAL_REFUSED = (
    "require_approval needs an approval step, which chat completions do not have: the gateway cannot ask the client "
    'before it runs a hub tool. Send "require_approval": "never" (limit the tools with allowed_tools), or leave '
    "the tools that need approval out; approval requests will come with the Responses API (/v1/responses)."
)


def _check_approval(value: Any, i: int) -> set[str] | None:
    """The tools that may run without approval (None: all); anything else needs an approval, which is refused.

    `{"never": [names]}` alone offers only those tools (the others would need approval, so they are left out).

    Raises:
        BadRequest: `approval_not_supported` for an approval requirement, `invalid_value` for a malformed one.
    """
    param = f"tools[{i}].require_approval"
    if value is None or value == "never":
        return None
    if value == "always":
        raise BadRequest(APPROVAL_REFUSED, param=param, code="approval_not_supported")
    if isinstance(value, dict):
        always = _names(value.get("always"), f"{param}.always")
        never = _names(value.get("never"), f"{param}.never")
        if always or never is None:
            raise BadRequest(APPROVAL_REFUSED, param=param, code="approval_not_supported")
        return never
    raise BadRequest(
        "'require_approval' must be 'never', 'always' or an object with 'always'/'never' tool names.",
        param=param,
        code="invalid_value",
    )
