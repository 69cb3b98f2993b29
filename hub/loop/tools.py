"""Running one round's hub tool calls, concurrently, and turning their results into `tool` messages."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types
import orjson

from hub.accounts.auth import Principal
from hub.catalog.dispatch import is_meta
from hub.loop.plan import JSON, LoopPlan, ToolHub
from hub.mcp.errors import McpHubError

logger = logging.getLogger("toolhub.loop")

DEFAULT_MAX_RESULT_CHARS = 20_000
META_SERVER = "hub"
"""`ToolRun.server` of a search-mode meta-tool call (`hub__search_tools`, ...): the hub itself answers it."""
REPORT_OUTPUT: ContextVar[bool] = ContextVar("toolhub_report_tool_output", default=False)
"""Set by an inbound API that reports what each hub tool answered (the Responses API's `mcp_call` items): the
`toolhub` record of the answer then carries each run's `output` (as the model got it)."""
CANCELLED = "Error: cancelled: the request was abandoned before the tool answered."
"""The content of a run cut short by its loop's cancellation (the client went away): nobody reads it, it is recorded."""


@dataclass(slots=True)
class ToolRun:
    """One hub tool call the loop made, reported back to the client in the `toolhub` field."""

    round: int
    id: str
    name: str
    server: str
    arguments: str
    is_error: bool = False
    duration_ms: float = 0.0
    truncated_chars: int = 0
    content: str = ""

    def public(self) -> JSON:
        return {
            "round": self.round,
            "id": self.id,
            "name": self.name,
            "server": self.server,
            "arguments": self.arguments,
            "is_error": self.is_error,
            "duration_ms": round(self.duration_ms, 2),
            "truncated_chars": self.truncated_chars,
            **({"output": self.content} if REPORT_OUTPUT.get() else {}),
        }


async def run_calls(
    calls: list[JSON],
    plan: LoopPlan,
    hub: ToolHub,
    principal: Principal,
    round_: int,
    max_chars: int,
    request_id: str = "",
    report: Callable[[list[ToolRun]], None] | None = None,
) -> list[ToolRun]:
    """Run every call at once; a failure or timeout becomes an error result, never an exception.

    A call in a hub namespace whose tool the plan does not offer is not run: its result is the reason, as an error.
    `report` gets the runs when they end, also when they are cancelled (then as `CANCELLED` errors): the request's
    accounting counts every call made, as the hub's tool-call log lists it.
    """
    runs = [_new_run(call, plan, round_) for call in calls]
    try:
        async with anyio.create_task_group() as tg:
            for run in runs:
                if run.is_error:
                    run.content, run.truncated_chars = cut(run.content, max_chars)
                else:
                    tg.start_soon(_run_one, run, plan, hub, principal, max_chars, request_id)
    finally:
        if report is not None:
            report(runs)
    return runs


def _new_run(call: JSON, plan: LoopPlan, round_: int) -> ToolRun:
    function = call.get("function") or {}
    name = function.get("name") or ""
    run = ToolRun(
        round=round_, id=call.get("id") or "", name=name, server="", arguments=function.get("arguments") or "{}"
    )
    tool = plan.hub_tools.get(name)
    if tool is not None:
        run.server = tool.server
    elif plan.catalog is not None and is_meta(name):
        run.server = META_SERVER
    else:
        run.is_error = True
        run.content = f"Error: {plan.why_unavailable(name) or f'No tool named {name!r} is available.'}"
    return run


async def _run_one(
    run: ToolRun, plan: LoopPlan, hub: ToolHub, principal: Principal, max_chars: int, request_id: str
) -> None:
    started = time.perf_counter()
    try:
        text, is_error = await _answer(run, plan, hub, principal, request_id)
    except anyio.get_cancelled_exc_class():
        run.duration_ms = (time.perf_counter() - started) * 1000
        run.is_error, run.content = True, CANCELLED
        raise
    run.duration_ms = (time.perf_counter() - started) * 1000
    run.is_error = is_error
    content = f"Error: {text}" if is_error else text
    if plan.catalog is not None and not is_error:  # over the limit: stored, read on with hub__read_result
        fitted = await plan.catalog.fit_text(content, max_chars, principal.owner, server=run.server, tool=run.name)
        run.content, run.truncated_chars = fitted
        plan.reading = plan.reading or fitted[0] != content
    else:
        run.content, run.truncated_chars = cut(content, max_chars)


async def _answer(run: ToolRun, plan: LoopPlan, hub: ToolHub, principal: Principal,
                  request_id: str) -> tuple[str, bool]:  # fmt: skip
    """(text, is_error) of one call: the hub's own meta-tool, or the hub tool it names."""
    try:
        arguments = orjson.loads(run.arguments or "{}")
        if not isinstance(arguments, dict):
            raise ValueError("tool arguments must be a JSON object")
    except ValueError as exc:
        return f"The arguments are not a valid JSON object: {exc}", True
    if run.server == META_SERVER:  # hub__search_tools & co. (hub/catalog); each tool it calls is bounded below
        result = await plan.catalog.call_meta(run.name, arguments, list(plan.hub_tools.values()), None,
                                              _hub_call(hub, principal, request_id), principal.owner)  # fmt: skip
        return result_text(result), bool(result.is_error)
    return await _call_hub(run.name, arguments, hub, principal, request_id)


async def _call_hub(name: str, arguments: dict[str, Any], hub: ToolHub, principal: Principal,
                    request_id: str) -> tuple[str, bool]:  # fmt: skip
    """(text, is_error) of one hub tool call; failures and timeouts are error texts for the model."""
    try:
        timeout = hub.server_call_timeout(name)
    except McpHubError as exc:
        return f"The tool could not be called: {exc}", True
    try:
        # The hub enforces the timeout too; this bound also covers a hub that does not answer at all.
        with anyio.fail_after(timeout + 1):
            result = await hub.call_tool(name, arguments, principal, timeout=timeout, request_id=request_id)
        return result_text(result), bool(result.is_error)
    except TimeoutError:
        return f"The tool did not answer within {timeout:g} s.", True
    except McpHubError as exc:  # unknown tool, not permitted, upstream down: data for the model
        logger.warning("hub tool %s failed: %s", name, exc)
        return f"The tool could not be called: {exc}", True


def _hub_call(hub: ToolHub, principal: Principal, request_id: str) -> Any:
    """`hub__call_tool`'s way to run a tool: as the loop runs one, as an MCP result."""

    async def call(name: str, arguments: dict[str, Any]) -> mcp_types.CallToolResult:
        text, is_error = await _call_hub(name, arguments, hub, principal, request_id)
        return mcp_types.CallToolResult(content=[mcp_types.TextContent(type="text", text=text)], is_error=is_error)

    return call


def result_text(result: mcp_types.CallToolResult) -> str:
    """A model-readable rendering of a `CallToolResult`."""
    parts: list[str] = []
    for item in result.content:
        if isinstance(item, mcp_types.TextContent):
            parts.append(item.text)
        elif isinstance(item, mcp_types.EmbeddedResource):
            resource: Any = item.resource
            parts.append(getattr(resource, "text", None) or f"[resource {resource.uri}]")
        elif isinstance(item, mcp_types.ImageContent | mcp_types.AudioContent):
            parts.append(f"[{item.type}: {item.mime_type}, not shown to the model]")
        else:
            parts.append(f"[{getattr(item, 'type', 'content')}]")
    if not parts and result.structured_content is not None:
        parts.append(orjson.dumps(result.structured_content).decode())
    return "\n".join(parts)


def cut(text: str, max_chars: int) -> tuple[str, int]:
    """Cut `text` to `max_chars`, with a visible marker saying how much was cut."""
    if len(text) <= max_chars:
        return text, 0
    removed = len(text) - max_chars
    return f"{text[:max_chars]}\n[Toolhub cut this tool result: {removed} of {len(text)} characters removed]", removed


def tool_messages(runs: list[ToolRun]) -> list[JSON]:
    return [{"role": "tool", "tool_call_id": run.id, "content": run.content} for run in runs]
