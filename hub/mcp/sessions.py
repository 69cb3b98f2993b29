"""Per-client upstream sessions (`session: per_client`, or `auto` once a server turned out to need them).

A stateful server (one that asks clients for sampling, elicitation or roots, or keeps subscriptions) cannot be shared
safely: every client would see the others' state. Such an upstream gets one session of its own (a process of its
own, for stdio) per downstream MCP session, opened on the client's first request to it, and closed when the client's
session ends, after `idle_timeout` seconds without a request, or when the hub stops. At most `max_sessions` are open
per server; a client beyond that gets an error result. The hub's shared session keeps serving the catalog and the
callers without an MCP session (REST, the tool loop, 2026-era requests, which carry no session).

`max_sessions_per_key` (opt-in) keeps one key from taking all `max_sessions` of a server and locking every other key
out until its sessions idle out: a key (the master key, and an open gateway's callers, count as one key each) holding
that many of the server's sessions gets the same kind of error result for its next new one. It is refused rather than
given room by closing one of its own idle sessions: a per-client server is stateful by definition (subscriptions, a
process's state, a pending sampling round), and closing a session behind a live client would silently lose that state,
where a refusal says what happened; the key's sessions free up as its MCP sessions end or after `idle_timeout`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
from collections.abc import AsyncIterator, Callable
from typing import Any, TextIO, TypeGuard

import anyio
from anyio.abc import TaskGroup
from mcp.server.connection import Connection

from hub.accounts.auth import Principal
from hub.mcp.errors import UpstreamUnavailable
from hub.mcp.levels import LogLevels
from hub.mcp.modern import is_modern
from hub.mcp.task_store import TaskRelay
from hub.mcp.upstream import Kind, Upstream

logger = logging.getLogger("toolhub.mcp")

OnOwnResourceUpdated = Callable[..., None]
"""`(server, uri, only=connection)`: an update from a client's own session, for that client only."""


class _Private:
    """One client's session to one upstream, with its idle deadline."""

    def __init__(self, upstream: Upstream, owner: str) -> None:
        self.upstream = upstream
        self.owner = owner
        """The key it was opened for (`owner_of`): what `max_sessions_per_key` counts."""
        self.scope = anyio.CancelScope()
        """Cancelled when the client's session ends; its deadline is `idle_timeout` after the last request."""
        self.in_flight = 0

    def close(self) -> None:
        self.scope.cancel()

    @property
    def closing(self) -> bool:
        return self.scope.cancel_called or anyio.current_time() >= self.scope.deadline

    def enter(self) -> None:
        self.in_flight += 1
        self.scope.deadline = math.inf

    def leave(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self.scope.deadline = anyio.current_time() + self.upstream.spec.idle_timeout


class ClientSessions:
    """The per-client sessions of every upstream of one hub."""

    def __init__(self, group: Callable[[], TaskGroup | None], on_resource_updated: OnOwnResourceUpdated,
                 errlog: TextIO | None = None, levels: LogLevels | None = None) -> None:  # fmt: skip
        self._group = group
        self._levels = levels or LogLevels()
        self._on_resource_updated = on_resource_updated
        self._errlog = errlog
        self._open: dict[tuple[str, Connection], _Private] = {}
        """By server name and the client's connection (the object: an id could be reused once it is gone)."""
        self._watched: set[Connection] = set()
        """Connections whose close already ends their own sessions (one callback per connection)."""
        self.tasks = TaskRelay()
        """The tasks clients created through the hub (`hub.mcp.task_relay`), kept with their own sessions."""

    def close_server(self, server: str) -> None:
        """Close every client's own session of `server` (it was removed from the config)."""
        for (name, _), private in list(self._open.items()):
            if name == server:
                private.close()

    def count(self, server: str, owner: str | None = None) -> int:
        """Open sessions of `server`: every client's, or those opened for `owner` (a key, `owner_of`)."""
        return sum(1 for (name, _), private in self._open.items()
                   if name == server and not private.closing and owner in (None, private.owner))  # fmt: skip

    def existing(self, upstream: Upstream, connection: Connection) -> Upstream | None:
        """`connection`'s own open session of `upstream`, if it has one (none is started)."""
        private = self._open.get((upstream.name, connection))
        return private.upstream if private is not None and not private.closing else None

    @contextlib.asynccontextmanager
    async def using(self, upstream: Upstream, caller: Any) -> AsyncIterator[Upstream]:
        """The upstream session to send a request on: `caller`'s own, when the server has per-client sessions and
        the caller has an MCP session; otherwise the shared one.

        Raises:
            UpstreamUnavailable: `max_sessions` are open already, or the caller's key holds `max_sessions_per_key`
                of them, or the client's session did not come up.
        """
        connection = getattr(caller, "session", None)
        if not upstream.per_client or not _is_session(connection):
            yield upstream
            return
        private = self._private(upstream, connection, owner_of(caller))
        private.enter()
        try:
            with anyio.move_on_after(upstream.spec.connect_timeout + 1.0):
                await private.upstream.first_attempt.wait()
            yield private.upstream
        finally:
            private.leave()

    def _private(self, upstream: Upstream, connection: Connection, owner: str) -> _Private:
        key = (upstream.name, connection)
        private = self._open.get(key)
        if private is None or private.closing:  # a closing one (idle) is replaced, not reused
            group = self._group()
            self._check_room(upstream, owner)
            if group is None or self.count(upstream.name) >= upstream.spec.max_sessions:
                limit = upstream.spec.max_sessions
                message = f"MCP server {upstream.name!r} has {limit} client sessions open (max_sessions); try later."
                raise UpstreamUnavailable(message, server=upstream.name)
            own = Upstream(upstream.config, _unchanged, functools.partial(self._on_resource_updated, only=connection),
                           errlog=self._errlog)  # fmt: skip
            own.log_level = self._levels.get(connection)  # applied once it connects, as after every reconnect
            private = self._open[key] = _Private(own, owner)
            self._watch(connection)
            group.start_soon(self._run, key, private, name=f"mcp-client-session-{upstream.name}")
        return private

    def _check_room(self, upstream: Upstream, owner: str) -> None:
        """Refuse `owner` one more session of `upstream` when it holds `max_sessions_per_key` (module docstring)."""
        limit = upstream.spec.max_sessions_per_key
        if limit is not None and (held := self.count(upstream.name, owner)) >= limit:
            message = (f"This key holds {held} of MCP server {upstream.name!r}'s client sessions, its limit "
                       f"(max_sessions_per_key = {limit}); end one of its MCP sessions or try later.")  # fmt: skip
            raise UpstreamUnavailable(message, server=upstream.name)

    def _watch(self, connection: Connection) -> None:
        if connection not in self._watched:
            self._watched.add(connection)
            connection.exit_stack.callback(self._closed, connection)

    def _closed(self, connection: Connection) -> None:
        """The client's MCP session ended: so do its own sessions."""
        self._watched.discard(connection)
        for (_, owner), private in list(self._open.items()):
            if owner is connection:
                private.close()

    async def _run(self, key: tuple[str, Connection], private: _Private) -> None:
        try:
            with private.scope:
                await private.upstream.run()
        finally:
            if self._open.get(key) is private:
                del self._open[key]
            logger.info("MCP server %s: a client's own session closed", key[0])


def owner_of(caller: Any) -> str:
    """The key `caller` acts for: "key:<id>" for a virtual key, else "master" or "open" (the master key, an open
    gateway's callers: one key each; a caller without a principal counts as an open gateway's)."""
    principal = getattr(caller, "principal", None)
    if not isinstance(principal, Principal):
        return "open"
    return f"key:{principal.key_id}" if principal.key_id is not None else principal.alias or "master"


def _is_session(connection: object) -> TypeGuard[Connection]:
    """Whether `connection` is a downstream MCP session. A 2026-era request's `Connection` is not: the SDK builds one
    per request and closes it with the response, so an own session keyed by it would start (and stop) a process
    per request; such requests use the shared session (sampling reaches them through `hub.mcp.modern.Bridge`)."""
    return isinstance(connection, Connection) and not is_modern(connection.protocol_version)


def _unchanged(server: str, kinds: frozenset[Kind]) -> None:
    """A client's own session does not change the hub's catalog (the shared session lists for everyone)."""
