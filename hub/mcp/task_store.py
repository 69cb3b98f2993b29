"""The tasks clients created through one hub (`hub.mcp.task_relay`), kept on the hub's `ClientSessions`.

Limits: `MAX_TASKS` per key and `MAX_TOTAL` in all; at a limit, the oldest task known to have ended makes room,
else a new task is refused. No task lives longer than `MAX_TTL_MS` here: the hub asks the upstream for at most that,
and reads the ttl the upstream answers defensively (`kept_ttl`). A task is detached from its
client session when that ends, and forgotten when it ran on that session's own upstream session (`per_client`).
"""

from __future__ import annotations

import math
import secrets
from collections import deque
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types as types
from mcp.server.connection import Connection
from mcp.shared.exceptions import MCPError

from hub.mcp.notify import SEND_TIMEOUT
from hub.mcp.tasks import STATUS
from hub.mcp.upstream import Upstream

MAX_TASKS = 100
"""Tasks kept per key."""
MAX_TOTAL = 1000
"""Tasks kept in all."""
MAX_TTL_MS = 86_400_000
"""The longest a task is kept (a day): a client's larger or null ttl is lowered to it."""
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
    return MAX_TTL_MS if ttl is None else min(ttl, MAX_TTL_MS)


def kept_ttl(ttl: Any) -> int:
    """The ttl (ms) the hub keeps a task for whose upstream answered `ttl`: at most `MAX_TTL_MS`, which is also what
    a ttl that is no number of at least 0 (null, negative, NaN) counts as, since the hub asked for no more."""
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not ttl >= 0:
        return MAX_TTL_MS
    return math.ceil(min(ttl, MAX_TTL_MS))


class TaskRelay:
    """The tasks clients created through one hub, by hub id and by upstream session and id."""

    def __init__(self) -> None:
        self._tasks: dict[str, RelayedTask] = {}
        self._upstream_ids: dict[tuple[object, str], RelayedTask] = {}
        self._early: deque[tuple[object, types.TaskStatusNotificationParams]] = deque(maxlen=EARLY)
        self._watched: set[Connection] = set()

    def room(self, owner: Hashable) -> None:
        """Make room for one more task of `owner` (forgetting the oldest ended one at a limit).

        Raises:
            MCPError: INVALID_REQUEST when a limit is reached and none of the tasks it counts has ended.
        """
        self.expire()
        for counted, limit in ((self.of(owner), MAX_TASKS), (list(self._tasks.values()), MAX_TOTAL)):
            if len(counted) >= limit:
                ended = next((e for e in counted if e.ended), None)
                if ended is None:
                    message = f"Too many tasks ({limit}); wait for one to end or cancel one."
                    raise MCPError(code=types.INVALID_REQUEST, message=message)
                self.forget(ended)

    def add(self, owner: Hashable, server: Upstream, upstream: Upstream, session: object, task: Mapping[str, Any],
            connection: Connection | None) -> RelayedTask:  # fmt: skip
        """Keep a task the upstream created (`room` first)."""
        self.room(owner)
        expires = anyio.current_time() + kept_ttl(task.get("ttl")) / 1000
        entry = RelayedTask(secrets.token_urlsafe(16), owner, server, upstream, session, str(task["taskId"]),
                            connection, expires, str(task.get("status", "working")))  # fmt: skip
        self._tasks[entry.hub_id] = entry
        self._upstream_ids[(session, entry.upstream_id)] = entry
        if connection is not None:
            self._watch(connection)
        return entry

    def forget(self, entry: RelayedTask) -> None:
        self._tasks.pop(entry.hub_id, None)
        if self._upstream_ids.get((entry.session, entry.upstream_id)) is entry:
            del self._upstream_ids[(entry.session, entry.upstream_id)]

    def expire(self) -> None:
        now = anyio.current_time()
        for entry in [e for e in self._tasks.values() if e.expires <= now]:
            self.forget(entry)

    def of(self, owner: Hashable) -> list[RelayedTask]:
        """`owner`'s live tasks, oldest first; expired ones are forgotten."""
        self.expire()
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
            self._early.append((session, params))
        else:
            entry.status = params.status
            await self._notify(entry, params)

    async def replay(self, entry: RelayedTask) -> None:
        """The status notifications of `entry` that came before the hub knew the task."""
        early = [p for s, p in self._early if s is entry.session and p.task_id == entry.upstream_id]
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

    def _watch(self, connection: Connection) -> None:
        if connection not in self._watched:
            self._watched.add(connection)
            connection.exit_stack.callback(self._closed, connection)

    def _closed(self, connection: Connection) -> None:
        """A client session ended: its tasks are detached from it, or forgotten when they ran on its own upstream
        session (which ends with it)."""
        self._watched.discard(connection)
        for entry in [e for e in self._tasks.values() if e.connection is connection]:
            entry.connection = None
            if entry.upstream is not entry.server:
                self.forget(entry)
