"""How many MCP sessions a key, and the whole process, may hold open: one ledger for `/mcp`, every `/mcp/<server>`
and `/sse`.

An open session costs ~39 KB of memory (tasks, streams, the SDK's dispatcher) until its client ends it or it has been
idle for the SDK's `session_idle_timeout` (30 minutes). The SDK's only bound is 10,000 sessions per manager, for
everyone together: one key, however limited, could take them all in a minute and lock every other key out, the
master key included, for half an hour. So:

- a key may hold at most `max_sessions_per_key` sessions (100); one more is refused 429 with a JSON-RPC error
  naming the limit. The master key (and an open gateway's callers, who are all one owner) is exempt: it is the
  operator's own key, the one needed to look into an overloaded hub, so it must never be locked out; its sessions
  still count in the total and are the first ended when it holds the most;
- the process holds at most `max_sessions` (10,000, ~400 MB); at that limit a new session ends the least recently
  used idle session of the owner holding the most (max-min fairness: the biggest holder pays, never a key with a
  few), whose client gets 404 on its next request and opens a new session as the spec asks. Only when no session
  is idle (each has a request in flight or an open GET/SSE stream) is the new one refused: 503 naming the limit.

A legacy SSE session is never idle: it lives exactly as long as its event stream is open.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Protocol

import anyio
import mcp_types as types
import orjson
from mcp.server.auth.middleware.bearer_auth import AuthorizationContext
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER
from starlette.types import Receive, Scope

from hub.accounts.auth import Principal
from hub.config import MCP_MAX_SESSIONS, MCP_MAX_SESSIONS_PER_KEY
from hub.mcp.lean_body import peek, read_body, request_of

logger = logging.getLogger("toolhub.mcp")

MAX_SESSIONS = MCP_MAX_SESSIONS
"""Open MCP sessions per process by default (`general_settings.mcp_max_sessions`)."""
MAX_SESSIONS_PER_KEY = MCP_MAX_SESSIONS_PER_KEY
"""Open MCP sessions per virtual key by default (`general_settings.mcp_max_sessions_per_key`)."""
SESSION_IDLE_TIMEOUT = 30 * 60.0
"""Seconds without a request in flight after which a streamable HTTP session ends (the SDK's default)."""
MCP_SESSION_ID = MCP_SESSION_ID_HEADER.lower().encode()
REFUSAL_BODY_BYTES = 64 * 1024
"""The most of a refused request's body read for its id (`request_id_of`)."""
EXEMPT_OWNERS = frozenset(("master", "open"))
"""Owners (`hub.mcp.guards.session_owner`) without a per-key limit: the master key, an open gateway's callers."""


class Seat(Protocol):
    """One open session, as the ledger sees it."""

    def idle_since(self) -> float | None:
        """When its last request ended (`anyio.current_time()`); None while one is in flight or a stream is open."""
        ...

    def end(self) -> None:
        """End the session now (synchronously forgotten: its id answers 404 from here on)."""
        ...


@dataclass(frozen=True)
class Refused:
    """Why a session was not opened: the HTTP status and the JSON-RPC error that say so."""

    status: int
    code: int
    message: str
    data: dict[str, Any] = field(default_factory=dict[str, Any])

    def body(self, request_id: types.RequestId | None = None) -> bytes:
        """The JSON-RPC error, as the answer to the request `request_id` (`request_id_of`)."""
        error = {"code": self.code, "message": self.message, "data": self.data}
        return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "error": error})

    def log(self) -> None:
        """A full hub is the operator's concern (WARNING); a key at its own limit is its client's (DEBUG: a client
        looping on it must not flood the log)."""
        level = logging.WARNING if self.status == HTTPStatus.SERVICE_UNAVAILABLE else logging.DEBUG
        logger.log(level, "Refused to open an MCP session: %s", self.message)


NO_SERVER = Refused(HTTPStatus.FORBIDDEN, types.INVALID_REQUEST,
                    "This key may use none of this hub's MCP servers, so it cannot open an MCP session.",
                    {"reason": "no_mcp_servers"})  # fmt: skip
"""The answer to a key whose scope names no served server: a session would hold memory and serve nothing."""


def may_use_any(principal: Principal, servers: Iterable[str]) -> bool:
    """Whether `principal` may use one of `servers`; a key without an MCP scope may (servers can be added later)."""
    unlimited = principal.mcp_servers is None and principal.mcp_tools is None
    return unlimited or any(principal.may_use_server(name) for name in servers)


def opens_session(scope: Scope) -> bool:
    """Whether the request names no session: it opens one (an `initialize`, a `GET /sse`) or needs none (2026-07-28)."""
    return not any(name == MCP_SESSION_ID for name, _ in scope["headers"])


async def request_id_of(scope: Scope, receive: Receive) -> types.RequestId | None:
    """The id of the JSON-RPC request a refused POST carries, for its refusal to answer (JSON-RPC 2.0, section 5: null
    only when the id could not be read): its body is read up to `REFUSAL_BODY_BYTES`, far more than an `initialize`
    needs; None for a longer body, one that is no JSON or no request, and for a GET."""
    if scope["method"] != "POST":
        return None
    body, _ = await read_body(receive, REFUSAL_BODY_BYTES)
    message = None if body is None else peek(body)
    request = None if message is None else request_of(message)
    return None if request is None else request.id


def owner_of(requestor: AuthorizationContext | None) -> str:
    """Whose session it is: `hub.mcp.guards.session_owner`'s id ("key:<id>", "master", "open")."""
    return requestor["client_id"] if requestor is not None else "open"


class SessionLedger:
    """The open sessions of one process by owner, with the two limits (module docstring)."""

    def __init__(self, max_sessions: int = MAX_SESSIONS, max_sessions_per_key: int = MAX_SESSIONS_PER_KEY) -> None:
        self.max_sessions = max_sessions
        self.max_sessions_per_key = max_sessions_per_key
        self._owners: dict[str, dict[Seat, None]] = {}
        self._owner_of: dict[Seat, str] = {}

    def __len__(self) -> int:
        return len(self._owner_of)

    def held_by(self, owner: str) -> int:
        return len(self._owners.get(owner, ()))

    def take(self, owner: str, seat: Seat) -> Refused | None:
        """Count `seat` as `owner`'s, ending another owner's idle session at the process limit; or say why not."""
        held = self.held_by(owner)
        if owner not in EXEMPT_OWNERS and held >= self.max_sessions_per_key:
            limit = self.max_sessions_per_key
            message = (f"This key has {held} open MCP session(s), its limit (max_sessions_per_key = {limit}). End one "
                       f"(DELETE with its Mcp-Session-Id) or let one idle out, then try again.")  # fmt: skip
            return Refused(HTTPStatus.TOO_MANY_REQUESTS, types.INVALID_REQUEST, message,
                           {"limit": limit, "open": held, "scope": "key"})  # fmt: skip
        if len(self) >= self.max_sessions and not self._make_room(owner):
            limit = self.max_sessions
            message = (f"The hub has {len(self)} open MCP sessions, its limit (max_sessions = {limit}), and none is "
                       f"idle. Try again later.")  # fmt: skip
            return Refused(HTTPStatus.SERVICE_UNAVAILABLE, types.INTERNAL_ERROR, message,
                           {"limit": limit, "open": len(self), "scope": "hub"})  # fmt: skip
        self._owners.setdefault(owner, {})[seat] = None
        self._owner_of[seat] = owner
        return None

    def leave(self, seat: Seat) -> None:
        """`seat`'s session ended (idempotent)."""
        owner = self._owner_of.pop(seat, None)
        if owner is None:
            return
        seats = self._owners[owner]
        seats.pop(seat, None)
        if not seats:
            del self._owners[owner]

    def _make_room(self, newcomer: str) -> bool:
        """End the least recently used idle session of the owner holding the most; False when none is idle."""
        best: tuple[int, float, str, Seat] | None = None  # (sessions held, -idle since, owner, seat): the max wins
        for owner, seats in self._owners.items():
            if best is not None and len(seats) < best[0]:
                continue
            oldest = _oldest_idle(seats)
            if oldest is not None and (best is None or (len(seats), -oldest[0]) > best[:2]):
                best = (len(seats), -oldest[0], owner, oldest[1])
        if best is None:
            return False
        held, since, owner, seat = best
        logger.info("MCP sessions at the limit (%d): ended the least recently used idle session of %s (holding %d, "
                    "idle %.0f s) to open one for %s", self.max_sessions, owner, held,
                    anyio.current_time() + since, newcomer)  # fmt: skip
        self.leave(seat)
        seat.end()
        return True


def _oldest_idle(seats: dict[Seat, None]) -> tuple[float, Seat] | None:
    found: tuple[float, Seat] | None = None
    for seat in seats:
        since = seat.idle_since()
        if since is not None and (found is None or since < found[0]):
            found = (since, seat)
    return found


class Streaming:
    """The seat of a session that lives as long as its stream: never idle (legacy SSE)."""

    __slots__ = ()

    def idle_since(self) -> float | None:
        return None

    def end(self) -> None:  # pragma: no cover - never chosen: never idle
        pass
