"""Tools an upstream marks `execution.taskSupport: "required"` (2025-11-25 tasks, SEP-1686), run to completion by
the hub: `tools/call` with a `task`, then `tasks/result`, which waits until the task ends (delivering any requests the
task makes meanwhile, such as an elicitation, which the hub routes like any other) and returns the tool's result.

So such a tool works for every caller: MCP clients of either era, REST and the tool loop. The hub exposes it with
`taskSupport: "optional"`, since it answers a plain call itself; a task-capable client may still call it as a task,
which `hub.mcp.task_relay` passes through to the upstream. A call that times out or is cancelled cancels the task.

The SDK validates a `tools/call` answer as a `CallToolResult` and has no `tasks/*` methods for 2025-11-25, so these
requests go through its dispatcher as raw JSON-RPC.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import mcp_types as types
from mcp import ClientSession
from mcp.client import NotificationBinding

from hub.mcp.routing import CURRENT

logger = logging.getLogger("toolhub.mcp")

CANCEL_TIMEOUT = 2.0
STATUS = "notifications/tasks/status"
StatusSink = Callable[[Any, types.TaskStatusNotificationParams], Awaitable[None]]
"""Takes the upstream the notification came from, and its params."""
_SINKS: weakref.WeakKeyDictionary[object, weakref.WeakMethod[StatusSink]] = weakref.WeakKeyDictionary()
"""Weak both ways: a sink (a hub's task relay) is kept by its hub, and keeps no upstream or hub alive from here."""


def requires_task(tool: types.Tool | None) -> bool:
    return tool is not None and tool.execution is not None and tool.execution.task_support == "required"


def without_task_requirement(tool: types.Tool) -> types.Tool:
    """The tool as the hub exposes it: callable directly (the hub runs the task) or as a task (passed through)."""
    if not requires_task(tool):
        return tool
    assert tool.execution is not None
    return tool.model_copy(update={"execution": tool.execution.model_copy(update={"task_support": "optional"})})


def without_task_support(tool: types.Tool) -> types.Tool:
    """The tool of an upstream that cannot run tasks for `tools/call`: whatever it says, it is not called as a task."""
    if tool.execution is None or tool.execution.task_support is None:
        return tool
    return tool.model_copy(update={"execution": tool.execution.model_copy(update={"task_support": None})})


def runs_tasks(capabilities: types.ServerCapabilities) -> bool:
    """Whether a server with `capabilities` runs task-augmented `tools/call` (`tasks.requests.tools.call`)."""
    requests = capabilities.tasks.requests if capabilities.tasks is not None else None
    return requests is not None and requests.tools is not None and requests.tools.call is not None


def supports_tasks(tool: types.Tool) -> bool:
    """Whether a client may call the exposed tool as a task (its upstream runs tasks for it)."""
    return tool.execution is not None and tool.execution.task_support == "optional"


async def raw(session: ClientSession, method: str, params: dict[str, Any], timeout: float) -> dict[str, Any]:
    dispatcher = session._dispatcher  # pyright: ignore[reportPrivateUsage]
    return await dispatcher.send_raw_request(method, params, {"timeout": timeout})


async def call_as_task(session: ClientSession, name: str, arguments: dict[str, Any] | None,
                       timeout: float) -> types.CallToolResult:  # fmt: skip
    """Create the task, wait for its result, and cancel it if the wait ends early.

    Raises:
        MCPError: the upstream refused the call or a `tasks/*` request; `REQUEST_TIMEOUT` after `timeout`.
    """
    params = {"name": name, "arguments": arguments or {}, "task": {"ttl": int(timeout * 1000) + 60_000}}
    created = types.CreateTaskResult.model_validate(await raw(session, "tools/call", params, timeout))
    task_id = created.task.task_id
    call = CURRENT.get()
    if call is not None:  # the task's requests (an elicitation...) go to this call's client: hub/mcp/routing.py
        call.task = task_id
    finished = False
    try:
        payload = await raw(session, "tasks/result", {"taskId": task_id}, timeout)
        finished = True
    finally:
        if not finished:
            await _cancel(session, task_id)
    return types.CallToolResult.model_validate(payload)


async def _cancel(session: ClientSession, task_id: str) -> None:
    with anyio.CancelScope(shield=True), anyio.move_on_after(CANCEL_TIMEOUT):
        try:
            await raw(session, "tasks/cancel", {"taskId": task_id}, CANCEL_TIMEOUT)
        except Exception as exc:  # best effort: the task expires with its ttl anyway
            logger.info("MCP: cancelling task %s failed: %s", task_id, exc)


def status_binding(upstream: object) -> NotificationBinding[types.TaskStatusNotificationParams]:
    """For an upstream's `ClientSession`: its `notifications/tasks/status` (outside the SDK's 2025-11-25 tables, so
    dropped without a binding) go to the sink `send_status_to` set for `upstream`, if any."""

    async def deliver(params: types.TaskStatusNotificationParams) -> None:
        ref = _SINKS.get(upstream)
        sink = ref() if ref is not None else None
        if sink is not None:
            await sink(upstream, params)

    return NotificationBinding(method=STATUS, params_type=types.TaskStatusNotificationParams, handler=deliver)


def send_status_to(upstream: object, sink: StatusSink) -> None:
    """Deliver `upstream`'s task status notifications to `sink`, a bound method (`hub.mcp.task_store`: to the tasks'
    clients), held weakly."""
    _SINKS[upstream] = weakref.WeakMethod(sink)
