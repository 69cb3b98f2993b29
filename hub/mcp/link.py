"""One connection to an upstream, and whether the connection itself was lost.

An error answer from the server is that request's answer, whatever its code: a tool may answer -32000 (JSON-RPC's
generic "server error"), even with the message "Connection closed", or -32600 "Session terminated", and close
nothing. The SDK reports a lost connection with those same errors: its waiters get -32000 "Connection closed" when
the read stream ends or a write fails, and its streamable-HTTP client makes up "Session terminated" for a 404 (and
-32000 for an event stream that broke off). So the error alone cannot tell the two apart; the transport can. A `Link`
notes what the transport saw: its read stream ended, a write failed, an HTTP exchange failed, or the server answered
404 to the session's id (it no longer knows the session, as after a restart). Only then does an error count as the
connection's loss, which restarts the upstream and fails the call with `UpstreamUnavailable`.
"""

from __future__ import annotations

import anyio
import mcp_types as types
from mcp.shared.exceptions import MCPError

from hub.mcp.sanitize import SanitizingReadStream
from hub.mcp.stdio_client import Pipes


class Link:
    """What one connection's transport saw; `broken` is set to have the supervisor restart the connection."""

    def __init__(self) -> None:
        self.broken = anyio.Event()
        self.read: SanitizingReadStream | None = None
        self.pipes: Pipes | None = None
        self._failed = False
        self._forgotten = False

    def failed(self) -> None:
        """A write to the upstream or an HTTP exchange with it failed (the SDK then reports -32000 to its waiter)."""
        self._failed = True

    def forgotten(self) -> None:
        """The server answered 404 to the session's id: every further request would fail too, so reconnect now."""
        self._forgotten = True
        self.broken.set()

    @property
    def ended(self) -> bool:
        """Whether the transport failed or its read stream ended (stdio: stdout ended or stdin failed)."""
        read, pipes = self.read, self.pipes
        return self._failed or (read is not None and read.closed.is_set()) or (pipes is not None and pipes.ended)

    def lost(self, error: MCPError) -> bool:
        """Whether `error` reports this connection's loss, not an error the server answered."""
        return self._forgotten or (error.error.code == types.CONNECTION_CLOSED and self.ended)
