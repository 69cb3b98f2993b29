"""The tasks clients created through one hub (`hub.mcp.task_relay`), kept on the hub's `ClientSessions`.

Limits: `MAX_TASKS` per key and `MAX_TOTAL` in all; at a limit, the oldest task known to have ended makes room,
else a new task is refused. A task the hub knows is lost (its upstream restarted or was removed) is forgotten and
counts no more. A task is kept between `MIN_TTL_MS` and `MAX_TTL_MS` (the receiver chooses its ttl): the hub asks the
upstream for that, and reads the ttl the upstream answers defensively (`kept_ttl`); one that expires before it ended
is cancelled on its upstream (best effort). A task is detached from its client session when that ends, and forgotten
when it ran on that session's own upstream session (`per_client`).
"""

from __future__ import annotations

import logging
import math
import secrets
import weakref
from collections import deque
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types as types
from mcp.server.connection import Connection
from mcp.shared.exceptions import MCPError

from hub.mcp.errors import McpHubError
from hub.mcp.notify import SEND_TIMEOUT
from hub.mcp.routing import Caller
from hub.mcp.tasks import CANCEL_TIMEOUT, STATUS, raw
from hub.mcp.upstream import Upstream

logger = logging.getLogger("toolhub.mcp")

MAX_TASKS = 100
"""Tasks kept per key."""
MAX_TOTAL = 1000
"""Tasks kept in all."""
MAX_TTL_MS = 86_400_000
"""The longest a task is kept (a day): a client's larger or null ttl is lowered to it."""
MIN_TTL_MS = 60_000
"""The shortest a task is kept (a minute): a smaller ttl would make a task unknown before its creator could ask."""
ENDED = frozenset(("completed", "failed", "cancelled"))
NOT_FOUND = "Failed to retrieve task: Task not found"
EARLY = 32
"""Status notifications of tasks not known yet that are kept: an upstream may send the first before its answer."""


@dataclass(eq=False, slots=True)
class RelayedTask:
    """One task a client created through the hub."""

    hub_id: str
    owner: Hashable
    server: Upstream
    """The configured upstream (its shared session)."""
    upstream: Upstream
    """The upstream session it runs on: `server`, or the creating client's own session of it (`per_client`)."""
    session: object
    """That upstream's `ClientSession` when the task was created: after a reconnect the task is gone."""
    upstream_id: str
    connection: Connection | None
    """The client session its status notifications go to (None once that ended)."""
    expires: float = math.inf
    status: str = "working"
    """The last status the hub saw."""

    @property
    def ended(self) -> bool:
        return self.status in ENDED


def requested_ttl(task: Any) -> int:
    """The ttl (ms) to ask the upstream for, from a client's `task` params: at most `MAX_TTL_MS`.

    Raises:
        MCPError: INVALID_PARAMS when `task` is not `TaskMetadata` with a ttl of at least 0.
    """
    try:
        ttl = types.TaskMetadata.model_validate(task, strict=True).ttl
    except ValueError:
        raise MCPError(code=types.INVALID_PARAMS, message="Invalid task params: expected {ttl?: integer}.") from None
    if ttl is not None and ttl < 0:
        raise MCPError(code=types.INVALID_PARAMS, message="Invalid task params: ttl must be at least 0.")
    return MAX_TTL_MS if ttl is None else max(MIN_TTL_MS, min(ttl, MAX_TTL_MS))


def kept_ttl(ttl: Any) -> int:
    """The ttl (ms) the hub keeps a task for whose upstream answered `ttl`: between `MIN_TTL_MS` and `MAX_TTL_MS`;
    a ttl that is no number of at least 0 (null, negative, NaN) counts as the maximum, since the hub asked for no
    more."""
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not ttl >= 0:
        return MAX_TTL_MS
    return max(MIN_TTL_MS, math.ceil(min(ttl, MAX_TTL_MS)))


async def send(upstream: Upstream, method: str, params: dict[str, Any], timeout: float,
               caller: Caller | None) -> dict[str, Any]:  # fmt: skip
    """One raw request on `upstream`'s session, routing its requests to `caller` meanwhile (as `Upstream` does)."""
    return await upstream.send(lambda s: raw(s, method, params, timeout), timeout, caller)


async def cancel_task(upstream: Upstream, task_id: str) -> None:
    """Best effort: a task the hub cannot keep is cancelled on the upstream, not left running there unseen."""
    with anyio.CancelScope(shield=True), anyio.move_on_after(CANCEL_TIMEOUT):
        try:
            await send(upstream, "tasks/cancel", {"taskId": task_id}, CANCEL_TIMEOUT, None)
        except Exception as exc:  # the task expires with its ttl anyway
            logger.info("MCP server %s: cancelling task %s failed: %s", upstream.name, task_id, exc)


def lost(entry: RelayedTask, servers: Mapping[str, Upstream] | None = None) -> bool:
    """Whether `entry`'s task is known to be gone: its upstream session is another now (a restart), or its server was
    removed or replaced (`servers`, the hub's). A server that is down now may come back: not known."""
    if servers is not None and servers.get(entry.server.name) is not entry.server:
        return True
    try:
        return entry.upstream.session() is not entry.session
    except McpHubError:
        return False


class TaskRelay:
    """The tasks clients created through one hub, by hub id and by upstream session and id."""

    def __init__(self) -> None:
        self._tasks: dict[str, RelayedTask] = {}
        self._upstream_ids: dict[tuple[object, str], RelayedTask] = {}
        self._early: deque[tuple[weakref.ref[object], types.TaskStatusNotificationParams]] = deque(maxlen=EARLY)
        """By upstream session, held weakly: a closed session's are dropped."""
        self._expired: list[RelayedTask] = []
        """Tasks that expired before they ended, to be cancelled on their upstreams (`cancel_expired`)."""
        self._watched: set[Connection] = set()
        self._ended: weakref.WeakSet[Connection] = weakref.WeakSet()
        """Client sessions that ended after they were watched: a task created for one is refused (`add`)."""

    def room(self, owner: Hashable, servers: Mapping[str, Upstream] | None = None) -> None:
        """Make room for one more task of `owner` (forgetting the oldest ended one at a limit).

        Raises:
            MCPError: INVALID_REQUEST when a limit is reached and none of the tasks it counts has ended.
        """
        self.expire(servers)
        for per_key, limit in ((True, MAX_TASKS), (False, MAX_TOTAL)):
            counted = [e for e in self._tasks.values() if not per_key or e.owner == owner]
            if len(counted) >= limit:
                ended = next((e for e in counted if e.ended), None)
                if ended is None:
                    message = f"Too many tasks ({limit}); wait for one to end or cancel one."
                    raise MCPError(code=types.INVALID_REQUEST, message=message)
                self.forget(ended)

    def add(self, owner: Hashable, server: Upstream, upstream: Upstream, session: object, task: Mapping[str, Any],
            connection: Connection | None) -> RelayedTask:  # fmt: skip
        """Keep a task the upstream created (`room` first).

        Raises:
            MCPError: INVALID_REQUEST when `connection` (`watch`ed) ended meanwhile, or `room`'s.
        """
        if connection is not None and connection in self._ended:
            raise MCPError(code=types.INVALID_REQUEST, message="The client session ended.")
        self.room(owner)
        expires = anyio.current_time() + kept_ttl(task.get("ttl")) / 1000
        entry = RelayedTask(secrets.token_urlsafe(16), owner, server, upstream, session, str(task["taskId"]),
                            connection, expires, str(task.get("status", "working")))  # fmt: skip
        self._tasks[entry.hub_id] = entry
        self._upstream_ids[(session, entry.upstream_id)] = entry
        if connection is not None:
            self.watch(connection)
        return entry

    def forget(self, entry: RelayedTask) -> None:
        self._tasks.pop(entry.hub_id, None)
        if self._upstream_ids.get((entry.session, entry.upstream_id)) is entry:
            del self._upstream_ids[(entry.session, entry.upstream_id)]

    def expire(self, servers: Mapping[str, Upstream] | None = None) -> None:
        """Forget the tasks that expired (those not ended are cancelled by `cancel_expired`) or are `lost`."""
        now = anyio.current_time()
        for entry in list(self._tasks.values()):
            gone = lost(entry, servers)
            if gone or entry.expires <= now:
                self.forget(entry)
            if not gone and entry.expires <= now and not entry.ended:
                self._expired.append(entry)

    async def cancel_expired(self) -> None:
        """Cancel the tasks that expired before they ended on their upstreams (best effort, at once)."""
        expired, self._expired = self._expired, []
        async with anyio.create_task_group() as tg:
            for entry in expired:
                tg.start_soon(cancel_task, entry.upstream, entry.upstream_id)

    def of(self, owner: Hashable, servers: Mapping[str, Upstream] | None = None) -> list[RelayedTask]:
        """`owner`'s live tasks, oldest first; expired and lost ones are forgotten."""
        self.expire(servers)
        return [e for e in self._tasks.values() if e.owner == owner]

    def find(self, task_id: Any, owner: Hashable) -> RelayedTask:
        """`owner`'s task `task_id`.

        Raises:
            MCPError: INVALID_PARAMS when there is no such task of `owner` (or it expired).
        """
        entry = self._tasks.get(task_id) if isinstance(task_id, str) else None
        if entry is None or entry.owner != owner or entry.expires <= anyio.current_time():
            raise MCPError(code=types.INVALID_PARAMS, message=NOT_FOUND)
        return entry

    async def status(self, upstream: Upstream, params: types.TaskStatusNotificationParams) -> None:
        """An upstream's `notifications/tasks/status`: to the client session that created the task, with its id."""
        if not upstream.healthy:
            return
        session = upstream.session()
        entry = self._upstream_ids.get((session, params.task_id))
        if entry is None:
            self._keep_early(weakref.ref(session), params)
        else:
            entry.status = params.status
            await self._notify(entry, params)

    def _keep_early(self, session: weakref.ref[object], params: types.TaskStatusNotificationParams) -> None:
        self._early = deque(((s, p) for s, p in self._early if s() is not None), maxlen=EARLY)
        self._early.append((session, params))

    async def replay(self, entry: RelayedTask) -> None:
        """The status notifications of `entry` that came before the hub knew the task (no longer kept)."""
        kept: deque[tuple[weakref.ref[object], types.TaskStatusNotificationParams]] = deque(maxlen=EARLY)
        early: list[types.TaskStatusNotificationParams] = []
        for session, params in self._early:
            if session() is entry.session and params.task_id == entry.upstream_id:
                early.append(params)
            else:
                kept.append((session, params))
        self._early = kept
        for params in early:
            entry.status = params.status
            await self._notify(entry, params)

    async def _notify(self, entry: RelayedTask, params: types.TaskStatusNotificationParams) -> None:
        if entry.connection is None:
            return
        payload = params.model_dump(by_alias=True, mode="json", exclude_unset=True)
        payload.pop("_meta", None)
        payload["taskId"] = entry.hub_id
        with anyio.move_on_after(SEND_TIMEOUT):
            await entry.connection.notify(STATUS, payload)

    def watch(self, connection: Connection) -> None:
        """Detach (or forget) the tasks of `connection` when it ends; before a task is created for it, so that one
        created after it ended is refused rather than kept for a session that is gone."""
        if connection not in self._watched and connection not in self._ended:
            self._watched.add(connection)
            connection.exit_stack.callback(self._closed, connection)

    def _closed(self, connection: Connection) -> None:
        """A client session ended: its tasks are detached from it, or forgotten when they ran on its own upstream
        session (which ends with it)."""
        self._watched.discard(connection)
        self._ended.add(connection)
        for entry in [e for e in self._tasks.values() if e.connection is connection]:
            entry.connection = None
            if entry.upstream is not entry.server:
                self.forget(entry)
