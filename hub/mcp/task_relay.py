"""Task pass-through for task-capable clients (2025-11-25 tasks, SEP-1686).

On a handshake-era session that negotiated 2025-11-25, the hub advertises the `tasks` capability (list, cancel,
task-augmented `tools/call`). A `tools/call` with `task` params, of a tool whose upstream runs tasks for it
(`taskSupport` "optional", or "required", which the hub lists as "optional"), creates the task on that upstream and
answers its `CreateTaskResult`; `tasks/get`, `tasks/result` and `tasks/cancel` go to the upstream session that holds
the task, `tasks/list` lists the caller's tasks, and the upstream's `notifications/tasks/status` reach the client
session that created the task.

Task ids: the hub hands out its own, random ids (`secrets.token_urlsafe`), mapped to the upstream's, and a task
belongs to the key that created it: another key's id, an unknown one, or one whose upstream session is gone (a
restart loses its tasks) is `-32602` "Task not found". The tasks are kept by `hub.mcp.task_store` (limits, ttl),
and a task created for a call its client cancelled, or whose session ended, while the upstream created it is
cancelled there (`created_task`), not left running uncounted. The upstream's requests and logs tagged with a task
reach only the client waiting on it in `tasks/result` (`TaskCaller.upstream_task`, `hub.mcp.routing`). Nothing
passes through before a session's `initialize` was accepted, and `/mcp/<server>` offers tasks only when that server
runs them. The SDK validates a `tools/call` answer as a `CallToolResult` and has no `tasks/*` handlers for
2025-11-25, so `TaskPassThrough` is a server middleware: it sees the raw request before the SDK validates it and
answers with the raw JSON-RPC result. It works on every transport the hub's MCP server runs on in the handshake
era: `/mcp` (either path of `hub.mcp.lean`), `/mcp/<server>`, `/sse` and `toolhub stdio`. A 2026-07-28 request gets
no tasks capability and takes the normal path (its `task` params ignored, the hub runs a task-required tool itself),
as does a plain call of any client.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar

import anyio
import anyio.lowlevel
import mcp_types as types
from mcp.server import ServerRequestContext
from mcp.server.context import CallNext, HandlerResult
from mcp.shared.exceptions import MCPError

from hub.accounts.auth import Principal
from hub.mcp.caller import DownstreamCaller
from hub.mcp.errors import (
    InvalidArguments,
    McpHubError,
    UnknownTool,
    UpstreamUnavailable,
    check_arguments,
)
from hub.mcp.health import error_result
from hub.mcp.hub import McpHub
from hub.mcp.levels import LogLevels
from hub.mcp.notify import connection_of
from hub.mcp.routing import RELATED, Caller
from hub.mcp.task_store import NOT_FOUND, RelayedTask, cancel_task, kept_ttl, requested_ttl, send
from hub.mcp.tasks import CANCEL_TIMEOUT, runs_tasks, send_status_to, supports_tasks
from hub.mcp.upstream import SEND_GRACE, Upstream

Ctx = ServerRequestContext[Any, Any]
_P = TypeVar("_P", types.CreateMessageRequestParams, types.ElicitRequestParams)
TASK_VERSIONS = frozenset(("2025-11-25",))
"""Protocol versions with 2025-11-25 tasks."""
CAPABILITY: dict[str, Any] = {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
TASK_METHODS = frozenset(("tasks/get", "tasks/result", "tasks/list", "tasks/cancel"))


def outward(entry: RelayedTask, result: dict[str, Any]) -> dict[str, Any]:
    """An upstream's answer about `entry`, with the hub's task id wherever the upstream's appears."""
    result = dict(result)
    if "taskId" in result:
        result["taskId"] = entry.hub_id
    task = result.get("task")
    if isinstance(task, dict) and "taskId" in task:
        result["task"] = {**task, "taskId": entry.hub_id}
    meta = _renamed_meta(result.get("_meta"), entry.hub_id)
    if meta is not None:
        result["_meta"] = meta
    return result


def _renamed_meta(meta: Any, hub_id: str) -> dict[str, Any] | None:
    """A copy of `_meta` whose related task is `hub_id`; None when it names no related task."""
    if not isinstance(meta, dict) or not isinstance(meta.get(RELATED), dict):
        return None
    return {**meta, RELATED: {**meta[RELATED], "taskId": hub_id}}


def noted(entry: RelayedTask, method: str, answer: dict[str, Any]) -> dict[str, Any]:
    """The upstream's answer about `entry`, its status noted; a result names its task (the spec's MUST) even if the
    upstream's does not."""
    if method != "tasks/result":
        entry.status = answer.get("status", entry.status)
        return answer
    entry.status = "completed"  # or failed: ended either way
    meta = answer.get("_meta")
    return {**answer, "_meta": {**(meta if isinstance(meta, dict) else {}), RELATED: {"taskId": entry.hub_id}}}


async def created_task(upstream: Upstream, params: dict[str, Any], timeout: float, caller: Caller) -> dict[str, Any]:
    """The upstream's answer to a task-augmented `tools/call`, waited for (bounded) even when the client's request
    is cancelled meanwhile: a task created then is cancelled on the upstream, not left running there uncounted.

    Raises:
        MCPError: REQUEST_TIMEOUT when no answer came within the bound.
    """
    created: dict[str, Any] | None = None
    with anyio.CancelScope(shield=True) as shield:
        shield.deadline = anyio.current_time() + timeout + SEND_GRACE + CANCEL_TIMEOUT
        created = await send(upstream, "tools/call", params, timeout, caller)
    if created is None:
        raise MCPError(code=types.REQUEST_TIMEOUT, message=f"No answer within {timeout:g} s.")
    try:
        await anyio.lowlevel.checkpoint()
    except anyio.get_cancelled_exc_class():
        task = created.get("task")
        if isinstance(task, dict) and isinstance(task.get("taskId"), str):
            await cancel_task(upstream, task["taskId"])  # pyright: ignore[reportUnknownArgumentType]
        raise
    return created


def advertise(result: HandlerResult) -> HandlerResult:
    """An `initialize` result, with the `tasks` capability when the negotiated version has tasks."""
    if not isinstance(result, dict) or result.get("protocolVersion") not in TASK_VERSIONS:
        return result
    capabilities = result.get("capabilities")
    if isinstance(capabilities, dict):
        result = {**result, "capabilities": {**capabilities, "tasks": CAPABILITY}}
    return result


class TaskPassThrough:
    """A `Server.middleware` that passes task requests through to the upstreams (module docstring)."""

    def __init__(self, hub: McpHub, view: str | None, principal: Callable[[Ctx], Principal]) -> None:
        self.hub = hub
        self.relay = hub.sessions.tasks
        self.view = view
        self._principal = principal

    async def __call__(self, ctx: Ctx, call_next: CallNext) -> HandlerResult:
        if ctx.method == "initialize":
            result = await call_next(ctx)
            return advertise(result) if self._offers_tasks() else result
        params = ctx.params or {}
        if ctx.protocol_version not in TASK_VERSIONS or not connection_of(ctx).initialize_accepted:
            return await call_next(ctx)  # the SDK refuses a request before `initialize`
        if ctx.method == "tools/call" and params.get("task") is not None:
            return await self._create(ctx, params)
        if ctx.method in TASK_METHODS:
            return await self._on_task(ctx, params)
        return await call_next(ctx)

    def _offers_tasks(self) -> bool:
        """Whether the endpoint's servers may run tasks: any on `/mcp`; on `/mcp/<server>`, whether that one does
        (as connected now)."""
        upstream = self.hub.upstreams.get(self.view) if self.view is not None else None
        return self.view is None or (upstream is not None and runs_tasks(upstream.capabilities))

    async def _create(self, ctx: Ctx, params: Mapping[str, Any]) -> HandlerResult:
        """A task-augmented `tools/call`: the task is created on the tool's upstream, under a hub id. A tool the key
        may not use, or whose server is down, is the same `isError` result as without `task`."""
        principal = self._principal(ctx)
        name, arguments = params.get("name"), params.get("arguments")
        if not isinstance(name, str) or not isinstance(arguments, dict | None):
            raise MCPError(code=types.INVALID_PARAMS, message="Invalid tools/call params.")
        ttl = requested_ttl(params["task"])
        try:
            self.relay.room(_owner(principal), self.hub.upstreams)
        finally:
            await self.relay.cancel_expired()
        caller = DownstreamCaller(ctx, principal, self.hub.log_levels)
        try:
            info = self.hub.resolve(name, principal, self.view)
            upstream = self.hub.upstreams[info.server]
            check_arguments(arguments, upstream.spec.max_message_bytes, name)  # pyright: ignore[reportUnknownArgumentType]
            if not supports_tasks(info.tool) or not runs_tasks(upstream.capabilities):
                raise MCPError(code=types.METHOD_NOT_FOUND, message=f"Tool {name!r} cannot be called as a task.")
            forwarded = {"name": info.original_name, "arguments": arguments or {}, "task": {"ttl": ttl}}
            self.relay.watch(connection_of(ctx))
            async with self.hub.sessions.using(upstream, caller) as target:
                session = target.session()
                send_status_to(target, self.relay.status)
                created = await created_task(target, forwarded, upstream.spec.call_timeout, caller)
                return await self._keep(ctx, principal, upstream, target, session, created)
        except UpstreamUnavailable as exc:
            return error_result(exc.message)
        except McpHubError as exc:
            raise _error(exc) from None

    async def _keep(self, ctx: Ctx, principal: Principal, upstream: Upstream, target: Upstream, session: object,
                    created: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
        """The upstream's answer to a task call, its task kept under a hub id (or cancelled if it cannot be)."""
        task = created.get("task")
        if not isinstance(task, dict) or not isinstance(task.get("taskId"), str):
            return created  # the upstream answered the call itself, as a receiver may
        try:
            entry = self.relay.add(_owner(principal), upstream, target, session, task, connection_of(ctx))  # pyright: ignore[reportUnknownArgumentType]
        except BaseException:
            await cancel_task(target, str(task["taskId"]))  # pyright: ignore[reportUnknownArgumentType]
            raise
        finally:
            await self.relay.cancel_expired()
        await self.relay.replay(entry)
        return outward(entry, {**created, "task": {**task, "ttl": kept_ttl(task.get("ttl"))}})  # pyright: ignore[reportUnknownMemberType]

    async def _on_task(self, ctx: Ctx, params: Mapping[str, Any]) -> dict[str, Any]:
        principal = self._principal(ctx)
        owner = _owner(principal)
        caller = DownstreamCaller(ctx, principal, self.hub.log_levels)
        if ctx.method == "tasks/list":
            if params.get("cursor") is not None:  # the hub lists all in one page and hands out no cursors
                raise MCPError(code=types.INVALID_PARAMS, message=f"Invalid cursor: {params['cursor']!r}")
            return {"tasks": await self._list(owner, caller)}
        entry = self.relay.find(params.get("taskId"), owner)
        caller = TaskCaller(ctx, principal, self.hub.log_levels, entry, ctx.method == "tasks/result")
        return outward(entry, noted(entry, ctx.method, await self._ask(entry, ctx.method, caller)))

    def _reachable(self, entry: RelayedTask, caller: DownstreamCaller) -> bool:
        """Whether `caller` reaches `entry`'s upstream session: a client's own session (`per_client`) only from the
        client session that created the task (the hub starts no session to look)."""
        return entry.upstream is entry.server or self.hub.sessions.existing(entry.server, caller.session) is (
            entry.upstream
        )

    async def _ask(self, entry: RelayedTask, method: str, caller: DownstreamCaller) -> dict[str, Any]:
        """`tasks/get`, `tasks/result` or `tasks/cancel` of `entry` on the upstream session that holds it; a client's
        own session is used as its other requests use it (which keeps it from closing as idle)."""
        if self.hub.upstreams.get(entry.server.name) is not entry.server:  # removed or replaced by a reload
            self.relay.forget(entry)
            raise MCPError(code=types.INVALID_PARAMS, message=f"{NOT_FOUND} (its MCP server was removed).")
        if not self._reachable(entry, caller):
            raise MCPError(code=types.INVALID_PARAMS, message=NOT_FOUND)
        if entry.upstream is entry.server:
            return await self._ask_on(entry.upstream, entry, method, caller)
        try:
            async with self.hub.sessions.using(entry.server, caller) as target:
                return await self._ask_on(target, entry, method, caller)
        except McpHubError as exc:
            raise _error(exc) from None

    async def _ask_on(self, upstream: Upstream, entry: RelayedTask, method: str, caller: Caller) -> dict[str, Any]:
        try:
            live = upstream.session()
        except McpHubError as exc:
            raise _error(exc) from None
        if live is not entry.session:
            self.relay.forget(entry)
            raise MCPError(code=types.INVALID_PARAMS, message=f"{NOT_FOUND} (its MCP server restarted).")
        timeout = upstream.spec.call_timeout
        if method == "tasks/result":  # waits until the task ends, as long as it may live
            timeout = max(timeout, entry.expires - anyio.current_time())
        try:
            return await send(upstream, method, {"taskId": entry.upstream_id}, timeout, caller)
        except McpHubError as exc:
            raise _error(exc) from None

    async def _list(self, owner: Hashable, caller: DownstreamCaller) -> list[dict[str, Any]]:
        """The state of each of `owner`'s tasks that `caller` reaches (`tasks/get` on their upstreams); a task they
        no longer know is forgotten."""
        entries = [e for e in self.relay.of(owner, self.hub.upstreams) if self._reachable(e, caller)]
        await self.relay.cancel_expired()
        found: dict[str, dict[str, Any]] = {}

        async def get(entry: RelayedTask) -> None:
            try:
                task = outward(entry, noted(entry, "tasks/get", await self._ask(entry, "tasks/get", caller)))
            except MCPError as exc:
                if exc.error.code == types.INVALID_PARAMS:
                    self.relay.forget(entry)
                return
            task.pop("_meta", None)
            found[entry.hub_id] = task

        async with anyio.create_task_group() as tg:
            for entry in entries:
                tg.start_soon(get, entry)
        return [found[e.hub_id] for e in entries if e.hub_id in found]


class TaskCaller(DownstreamCaller):
    """The client asking about a task: the upstream's requests for the task (e.g. an elicitation while the client
    waits in `tasks/result`) reach it with the hub's task id in their `related-task` metadata."""

    def __init__(self, ctx: Ctx, principal: Principal, levels: LogLevels, entry: RelayedTask, waits: bool) -> None:
        super().__init__(ctx, principal, levels)
        self.entry = entry
        self.upstream_task = entry.upstream_id if waits else None
        """The upstream's id of the task when this caller waits on it (`tasks/result`): requests and logs the
        upstream tags with that task go to this caller only (`hub.mcp.routing`)."""

    async def sample(self, params: types.CreateMessageRequestParams) -> Any:
        return await super().sample(self._renamed(params))

    async def elicit(self, params: types.ElicitRequestParams) -> Any:
        return await super().elicit(self._renamed(params))

    def _renamed(self, params: _P) -> _P:
        meta = _renamed_meta(params.meta, self.entry.hub_id)
        return params if meta is None else params.model_copy(update={"meta": meta})


def _owner(principal: Principal) -> Hashable:
    return principal.key_id, principal.is_master


def _error(exc: McpHubError) -> MCPError:
    code = types.INVALID_PARAMS if isinstance(exc, UnknownTool | InvalidArguments) else types.INTERNAL_ERROR
    return MCPError(code=code, message=exc.message)
