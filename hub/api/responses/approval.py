"""Hub MCP tools that need approval: `mcp_approval_request` items out, `mcp_approval_response` items in.

The tools of an `mcp` entry whose `require_approval` is not `"never"` are offered to the model as plain function
tools (hub-namespaced names) instead of going to the tool loop. A call the model makes to one of them comes back to
the client as an `mcp_approval_request` (id `mcpr_<call id>`); the conversation is stored with the model's turn. The
continuation (`previous_response_id`) carries `mcp_approval_response` items: approved calls run on the hub and are
reported as `mcp_call` items, refused ones tell the model so, and the model goes on from there.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from hub.accounts.auth import Principal
from hub.api.responses.mcp import call_item
from hub.api.responses.objects import JSON
from hub.errors import BadRequest
from hub.loop.plan import HubTool, LoopPlan, function_tool, prepare_tool_loop
from hub.loop.tools import run_calls
from hub.state import hub_state, request_id

PREFIX = "mcpr_"
DENIED = "The user did not approve this tool call."


def _needs_approval(tool: Any) -> bool:
    return isinstance(tool, dict) and tool.get("type") == "mcp" and tool.get("require_approval", "never") != "never"  # pyright: ignore[reportUnknownMemberType]


def _free(entry: JSON) -> set[str]:
    """Tool names of an entry that run without approval: `require_approval: {"never": {"tool_names": [...]}}`
    (or a plain list, as the chat path takes it)."""
    never = entry["require_approval"].get("never") if isinstance(entry["require_approval"], dict) else None
    names = never.get("tool_names") if isinstance(never, dict) else never
    return {n for n in names if isinstance(n, str)} if isinstance(names, list) else set()  # pyright: ignore[reportUnknownVariableType]


def _split(entry: JSON) -> tuple[JSON | None, JSON]:
    """(the entry's part for the tool loop: tools that need no approval, or None; the part that needs approval)."""
    free = _free(entry)
    loop = {**entry, "require_approval": "never", "allowed_tools": sorted(free)} if free else None
    allowed = entry.get("allowed_tools")
    if loop is not None and isinstance(allowed, list):
        loop["allowed_tools"] = [n for n in loop["allowed_tools"] if n in allowed]
    return loop, {**entry, "require_approval": "never", "_free": free}


class Approvals:
    """The hub tools of a request that run only once the client approves a call."""

    def __init__(self, plan: LoopPlan) -> None:
        self.plan = plan
        self.tools: dict[str, HubTool] = plan.hub_tools

    @classmethod
    async def offer(cls, request: Request, principal: Principal, chat: JSON) -> Approvals | None:
        """Swap `chat`'s `mcp` entries that need approval for their tools as function tools; None if none does.

        Raises:
            BadRequest: an unusable entry.
        """
        tools: list[Any] = chat.get("tools") or []
        parts = [_split(t) for t in tools if _needs_approval(t)]
        if not parts:
            return None
        free = {name for _, entry in parts for name in entry.pop("_free")}
        plan = await prepare_tool_loop({"tools": [p for _, p in parts]}, [], hub_state(request).extras, principal)
        assert plan is not None  # parts exist
        plan.hub_tools = {k: t for k, t in plan.hub_tools.items() if t.original_name not in free}
        kept = [t for t in tools if not _needs_approval(t)] + [loop for loop, _ in parts if loop is not None]
        chat["tools"] = kept + [function_tool(t) for t in plan.hub_tools.values()]
        return cls(plan)

    def requests(self, response: JSON) -> None:
        """Turn the response's function calls of these tools into `mcp_approval_request` items, in place."""
        response["output"] = [self.request_item(i) if self._mine(i) else i for i in response["output"]]

    def _mine(self, item: JSON) -> bool:
        return item.get("type") == "function_call" and item.get("name") in self.tools

    def request_item(self, item: JSON) -> JSON:
        """The `mcp_approval_request` item for the model's call `item` of one of these tools."""
        tool = self.tools[item["name"]]
        return {"id": PREFIX + item["call_id"], "type": "mcp_approval_request", "server_label": tool.server,
                "name": tool.original_name, "arguments": item["arguments"]}  # fmt: skip


def approval_responses(body: JSON) -> list[tuple[int, JSON]]:
    items = body.get("input")
    if not isinstance(items, list):
        return []
    return [
        (i, item)
        for i, item in enumerate(items)
        if isinstance(item, dict) and item.get("type") == "mcp_approval_response"
    ]  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]


def requested(output: list[JSON]) -> set[str]:
    """The ids of the `mcp_approval_request` items in a response's output: the calls a client may approve."""
    return {str(item.get("id")) for item in output if item.get("type") == "mcp_approval_request"}


def check(body: JSON) -> None:
    """Refuse `mcp_approval_response` items without `previous_response_id`: they answer a request of that response.

    Raises:
        BadRequest: an approval response in a request that continues no response.
    """
    responses = approval_responses(body)
    if responses and body.get("previous_response_id") is None:
        raise BadRequest(f"input[{responses[0][0]}]: an mcp_approval_response answers an mcp_approval_request of an "
                         "earlier response: send it with that response's id as previous_response_id.",
                         param="previous_response_id", code="missing_required_parameter")  # fmt: skip


async def answer(
    request: Request, principal: Principal, body: JSON, history: list[JSON], asked: set[str]
) -> tuple[list[JSON], list[JSON]]:
    """(tool messages, `mcp_call` items) for the request's `mcp_approval_response` items; `asked`: the ids of the
    previous response's `mcp_approval_request` items (`requested`). Its other calls (the client's own function
    calls) are no approval requests: approving one would run or answer it in the client's place.

    Raises:
        BadRequest: a response without `previous_response_id`, or for a request the previous response did not make.
    """
    responses = approval_responses(body)
    if not responses:
        return [], []
    calls = (history[-1].get("tool_calls") or []) if history else []
    pending = {call["id"]: call for call in calls if PREFIX + call["id"] in asked}
    approved, denied = [], []
    for i, item in responses:
        call = pending.get(str(item.get("approval_request_id") or "").removeprefix(PREFIX))
        if call is None:
            raise BadRequest(f"input[{i}]: no pending mcp_approval_request {item.get('approval_request_id')!r} in the "
                             "response named by previous_response_id.", param=f"input[{i}].approval_request_id",
                             code="invalid_value")  # fmt: skip
        (approved if item.get("approve") is True else denied).append(call)
    hub = hub_state(request).extras["mcp"]
    plan = LoopPlan(client_tools=[], hub_tools={t.name: t for t in hub.tools(principal)})
    limit = hub_state(request).config.max_tool_result_chars  # as in the tool loop
    runs = await run_calls(approved, plan, hub, principal, 1, limit, request_id(request))
    messages = [{"role": "tool", "tool_call_id": run.id, "content": run.content} for run in runs]
    messages += [{"role": "tool", "tool_call_id": call["id"], "content": DENIED} for call in denied]
    items = [call_item(run.server, plan.hub_tools.get(run.name), run.name, run.arguments, run.content, run.is_error,
                       PREFIX + run.id) for run in runs]  # fmt: skip
    return messages, items
