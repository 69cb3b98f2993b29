"""Hosted MCP through the hub: `{"type": "mcp", ...}` tools run by the tool loop, reported as OpenAI reports them.

The chat path's tool loop (hub/loop) runs the calls; this builds the items around its answer: one `mcp_list_tools`
item per server offered (also for tools that wait for approval: approval.py), then one `mcp_call` item per call the
loop made (from the answer's `toolhub` record, whose runs carry their output while `REPORT_OUTPUT` is set), then the
model's own output. A hub tool never reaches an upstream as an `mcp` tool: the loop offers hub tools to the model as
function tools.

As OpenAI does, a server is listed once in a conversation: not again while an `mcp_list_tools` item of it is in the
context (the earlier responses' items, or the request's input), as on the continuation that answers approvals.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from starlette.requests import Request

from hub.accounts.auth import Principal
from hub.api.responses import objects
from hub.api.responses.objects import JSON
from hub.loop.plan import HubTool, LoopPlan, plan_tool_loop
from hub.state import hub_state


def mcp_entries(chat: JSON) -> list[JSON]:
    """The request's `mcp` tools (those that need approval were already swapped out: approval.py)."""
    return [t for t in chat.get("tools") or () if isinstance(t, dict) and t.get("type") == "mcp"]  # pyright: ignore[reportUnknownVariableType]


def alias_servers(request: Request, chat: JSON) -> tuple[str, ...]:
    """The hub servers the model alias offers by default (`model_list[].mcp_servers`)."""
    routes = hub_state(request).config.models.get(chat["model"]) or ()
    return routes[0].mcp_servers if routes else ()


def reports_tools(request: Request, chat: JSON) -> bool:
    """Whether hub tools may run for this request, so that their outputs are to be reported."""
    return bool(mcp_entries(chat) or alias_servers(request, chat))


class McpReport:
    """The hub tools a request was offered, and how to report the calls the loop made with them."""

    def __init__(self, plan: LoopPlan | None, waiting: Iterable[HubTool] = (), known: Collection[str] = ()) -> None:
        self.runs = plan is not None
        """Whether the tool loop may run hub tools (then a stream holds the answer until their `mcp_call` items)."""
        self.tools = plan.hub_tools if plan is not None else {}
        self.offered = [*self.tools.values(), *waiting]
        """Every hub tool offered: the loop's, then those that wait for approval."""
        self.known = known
        """Servers the conversation has listed already."""

    @classmethod
    def of(
        cls, request: Request, principal: Principal, chat: JSON, waiting: Iterable[HubTool] = (), context: Any = ()
    ) -> McpReport | None:
        """The report for a request with hub tools, from `mcp` entries or the alias's `mcp_servers` (after run_chat,
        which waited for the servers), and `waiting`, the tools that need approval; else None. `context`: the
        conversation's items (earlier responses' and this input's), whose `mcp_list_tools` servers are not listed
        again."""
        defaults, waiting = alias_servers(request, chat), list(waiting)
        plan = None
        if mcp_entries(chat) or defaults:
            plan = plan_tool_loop(chat, defaults, hub_state(request).extras.get("mcp"), principal)
        return cls(plan, waiting, listed_servers(context)) if plan is not None or waiting else None

    def list_items(self) -> list[JSON]:
        """One `mcp_list_tools` item per server the conversation has not listed yet, in the order the tools are
        offered."""
        servers: dict[str, list[JSON]] = {}
        for tool in self.offered:
            if tool.server not in self.known:
                servers.setdefault(tool.server, []).append(_listed(tool))
        return [{"id": objects.new_id("mcpl"), "type": "mcp_list_tools", "server_label": server, "tools": tools,
                 "error": None} for server, tools in servers.items()]  # fmt: skip

    def call_items(self, record: Any) -> list[JSON]:
        """One `mcp_call` item per hub tool call in the answer's `toolhub` record."""
        runs = record.get("tool_calls") if isinstance(record, dict) else None
        return [self._call(run) for run in runs or () if isinstance(run, dict)]  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]

    def _call(self, run: JSON) -> JSON:
        tool = self.tools.get(run.get("name") or "")
        server = run.get("server") or (tool.server if tool else "")
        return call_item(server, tool, run.get("name") or "", run.get("arguments"), run.get("output"),
                         bool(run.get("is_error")))  # fmt: skip


def listed_servers(items: Any) -> set[str]:
    """The servers that `mcp_list_tools` items among `items` list."""
    servers: set[str] = set()
    for item in items if isinstance(items, list) else ():  # pyright: ignore[reportUnknownVariableType]
        label = item.get("server_label") if isinstance(item, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if isinstance(label, str) and item.get("type") == "mcp_list_tools":  # pyright: ignore[reportUnknownMemberType]
            servers.add(label)
    return servers


def call_item(
    server: str,
    tool: HubTool | None,
    name: str,
    arguments: Any,
    output: Any,
    failed: bool,
    approval_request_id: str | None = None,
) -> JSON:
    """The `mcp_call` item for one hub tool call (`tool`: the hub's, or None when it is no longer offered, then
    `name` as called); `approval_request_id` for a call that ran once the client approved it."""
    item: JSON = {"id": objects.new_id("mcp"), "type": "mcp_call", "server_label": server,
                  "name": tool.original_name if tool else name, "arguments": arguments or "{}",
                  "output": None if failed else output, "error": execution_error(output) if failed else None,
                  "status": "failed" if failed else "completed"}  # fmt: skip
    if approval_request_id is not None:
        item["approval_request_id"] = approval_request_id
    return item


def execution_error(output: Any) -> JSON:
    """`mcp_call.error` as the openai SDK types it (`McpToolExecutionError`): the tool's failure text as the MCP
    content it came in, without the `Error: ` the model reads it with."""
    text = str(output or "The tool call failed.").removeprefix("Error: ")
    return {"type": "mcp_tool_execution_error", "content": [{"type": "text", "text": text}]}


def _listed(tool: HubTool) -> JSON:
    schema = dict(tool.input_schema) if tool.input_schema else {"type": "object", "properties": {}}
    return {"name": tool.original_name, "description": tool.description, "input_schema": schema, "annotations": None}
