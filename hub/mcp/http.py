"""The hub over HTTP: streamable HTTP at `/mcp`, one upstream at `/mcp/<server>`, legacy SSE at `/sse`, and the
lifespan extension that opens it all. Every MCP endpoint takes the same keys as `/v1` (401 in OpenAI's JSON shape);
a session belongs to the key that opened it, and the transports' own errors are JSON-RPC (`hub.mcp.guards`).
With Redis and `replica_url`, a request for a session another replica holds is forwarded there (`hub.mcp.forward`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import anyio
from anyio.abc import TaskGroup, TaskStatus
from mcp.server.sse import SseServerTransport
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from hub.accounts.auth import Principal
from hub.app import Extension
from hub.config import Config, ConfigError
from hub.errors import HubError, NotFound, ServiceUnavailable, error_response
from hub.mcp import rest
from hub.mcp.admission import (
    MAX_SESSIONS,
    MAX_SESSIONS_PER_KEY,
    NO_SERVER,
    SESSION_IDLE_TIMEOUT,
    SessionLedger,
    Streaming,
    may_use_any,
    opens_session,
    owner_of,
    request_id_of,
)
from hub.mcp.catalog import DEFAULT_SEPARATOR
from hub.mcp.challenge import with_challenge
from hub.mcp.config import McpServerConfig
from hub.mcp.forward import Forwarder, replica_forwarding, session_prefix
from hub.mcp.guards import JsonRpcErrors, redact_session_ids, session_owner
from hub.mcp.hub import McpHub
from hub.mcp.instructions import CALLER, HubServer
from hub.mcp.lean import LeanSessionManager
from hub.mcp.lean_body import requestor_of
from hub.mcp.notify import Downstreams
from hub.mcp.server import PRINCIPAL_KEY, build_server
from hub.mcp.session_end import send_json
from hub.state import HubState, authenticate, hub_state

logger = logging.getLogger("toolhub.mcp")

SSE_MESSAGES = "/sse/messages/"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")


@dataclass(frozen=True)
class McpSettings:
    """Hub-wide MCP options."""

    separator: str = DEFAULT_SEPARATOR
    allowed_hosts: Sequence[str] = ()
    """Extra `Host` values accepted by DNS-rebinding protection (e.g. `hub.example.com`, `hub.example.com:*`),
    for deployments behind a reverse proxy; loopback names on any port are always accepted."""
    max_body_bytes: int = 16 * 1024 * 1024
    """Longest request body `/mcp`, `/mcp/<server>` and `/sse` take (413 beyond), as REST and `/v1` do; the arguments
    in it are then held to their server's `max_message_bytes`."""
    max_sessions: int = MAX_SESSIONS
    """Open MCP sessions in the process, every endpoint together (`hub.mcp.admission`)."""
    max_sessions_per_key: int = MAX_SESSIONS_PER_KEY
    """Open MCP sessions per virtual key, every endpoint together; the master key is exempt."""

    @classmethod
    def from_config(cls, config: Config) -> McpSettings:
        """`general_settings.mcp_tool_separator`, `mcp_allowed_hosts`, `max_request_size_mb`, `mcp_max_sessions`
        and `mcp_max_sessions_per_key`."""
        return cls(separator=config.mcp_tool_separator, allowed_hosts=config.mcp_allowed_hosts,
                   max_body_bytes=config.max_request_bytes, max_sessions=config.mcp_max_sessions,
                   max_sessions_per_key=config.mcp_max_sessions_per_key)  # fmt: skip


def transport_security(extra_hosts: Sequence[str] = ()) -> TransportSecuritySettings:
    """DNS-rebinding protection: loopback on any port, plus the configured hosts (with or without a port)."""
    hosts = [*(f"{h}:*" for h in LOCAL_HOSTS), *LOCAL_HOSTS, *extra_hosts]
    origins = [f"{scheme}://{host}" for scheme in ("http", "https") for host in hosts]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


class _Served:
    """One served MCP server with its streamable HTTP manager and its downstream connections."""

    def __init__(self, hub: McpHub, settings: McpSettings, security: TransportSecuritySettings, view: str | None,
                 prefix: str, ledger: SessionLedger) -> None:  # fmt: skip
        self.downstreams = Downstreams()
        self.server: HubServer = build_server(hub, self.downstreams, view=view)
        self.manager = LeanSessionManager(self.server, security_settings=security, session_prefix=prefix,
                                          max_request_body_size=settings.max_body_bytes, ledger=ledger,
                                          session_idle_timeout=SESSION_IDLE_TIMEOUT,
                                          quiet=lambda tool: hub.quiet_tool(tool, view))  # fmt: skip
        self.scope = anyio.CancelScope()

    async def serve(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run the manager until `scope` is cancelled (the hub stops, or config reload removed the server)."""
        with self.scope:
            try:
                async with self.manager.run():
                    task_status.started()
                    await anyio.sleep_forever()
            finally:
                self.downstreams.close()


class McpHttp:
    """The HTTP transports of the hub; `state.extras["mcp_http"]`."""

    def __init__(self, hub: McpHub, settings: McpSettings | None = None, forwarder: Forwarder | None = None) -> None:
        settings = settings or McpSettings()
        security = transport_security(settings.allowed_hosts)
        self.hub = hub
        self.settings = settings
        self.security = security
        """Host/Origin checks of every MCP endpoint, the REST ones included."""
        self.forwarder = forwarder
        """Sends requests for other replicas' sessions to them; None without Redis or `replica_url`."""
        self.prefix = session_prefix(forwarder.registry.replica_id) if forwarder is not None else ""
        self.ledger = SessionLedger(settings.max_sessions, settings.max_sessions_per_key)
        """Every session of `/mcp`, `/mcp/<server>` and `/sse`, per key and in all (`hub.mcp.admission`)."""
        self.aggregated = self._served(None)
        self.per_server = {name: self._served(name) for name in hub.upstreams}
        self.sse = SseServerTransport(
            SSE_MESSAGES, security_settings=security, max_request_body_size=settings.max_body_bytes
        )
        self._group: TaskGroup | None = None
        redact_session_ids()
        hub.on_change(self._changed)
        hub.on_resource_updated(self._updated)

    def _served(self, view: str | None) -> _Served:
        return _Served(self.hub, self.settings, self.security, view, self.prefix, self.ledger)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tg:
            for served in (self.aggregated, *self.per_server.values()):
                await tg.start(served.serve)
            self._group = tg
            try:
                yield
            finally:
                self._group = None
                tg.cancel_scope.cancel()

    async def sync(
        self, servers: Mapping[str, McpServerConfig], max_body_bytes: int | None = None
    ) -> dict[str, list[str]]:
        """Serve exactly `servers` (config reload): start new ones, stop removed ones, restart changed ones; with
        `max_body_bytes`, every endpoint takes bodies up to it from now on (`limit_bodies`).

        Raises:
            ConfigError: two servers would share a prefix (nothing is changed then).
        """
        prefixes = Counter(config.spec.alias or name for name, config in servers.items())
        if taken := sorted(prefix for prefix, count in prefixes.items() if count > 1):
            raise ConfigError("mcp_servers", f"prefix {taken[0]!r} is used by two servers")
        if max_body_bytes is not None:  # before adding: servers added now take it too
            self.limit_bodies(max_body_bytes)
        current = self.hub.upstreams
        removed = sorted(name for name in current if name not in servers)
        added = sorted(name for name in servers if name not in current)
        changed = sorted(name for name in servers if name in current and current[name].config != servers[name])
        for name in (*removed, *changed):
            self.remove(name)
        for name in (*added, *changed):
            await self.add(servers[name])
        return {"added": added, "removed": removed, "restarted": changed}

    async def add(self, config: McpServerConfig) -> None:
        """Serve one more upstream, at `/mcp/<name>` too."""
        assert self._group is not None, "the MCP transports are not running"
        self.hub.add(config)
        served = self.per_server[config.name] = self._served(config.name)
        await self._group.start(served.serve)

    def limit_bodies(self, size: int) -> None:
        """Take bodies up to `size` from the next request on, on every endpoint and in servers added later (config
        reload of `max_request_size_mb`); the SDK's body-limit layers are built with a fixed limit, set here."""
        self.settings = dataclasses.replace(self.settings, max_body_bytes=size)
        for served in (self.aggregated, *self.per_server.values()):
            served.manager.max_request_body_size = served.manager._body_limit.max_body_size = size
        self.sse._post_message_app.max_body_size = size

    def remove(self, name: str) -> None:
        """Stop serving an upstream; `/mcp/<name>` answers 404 from now on and its sessions end."""
        served = self.per_server.pop(name, None)
        if served is not None:
            served.scope.cancel()
        self.hub.remove(name)

    async def _changed(self, server: str, kinds: frozenset[str]) -> None:
        await self.aggregated.downstreams.changed(kinds)
        if (served := self.per_server.get(server)) is not None:
            await served.downstreams.changed(kinds)

    async def _updated(self, server: str, uri: str) -> None:
        await self.aggregated.downstreams.resource_updated(self.hub.catalog.exposed_uri(server, uri))
        if (served := self.per_server.get(server)) is not None:
            await served.downstreams.resource_updated(uri)

    async def serve_sse(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A legacy SSE session, counted by the ledger for as long as its stream is open."""
        server, seat = self.aggregated.server, Streaming()
        if (refused := self.ledger.take(owner_of(requestor_of(scope)), seat)) is not None:
            refused.log()
            await send_json(send, refused.body(), None, refused.status)
            return
        try:
            async with self.sse.connect_sse(scope, receive, send) as (read, write):
                await server.run(read, write, server.create_initialization_options())
        except ValueError:  # connect_sse already answered a request that failed its Host/Origin checks
            logger.debug("rejected an SSE connection", exc_info=True)
        finally:
            self.ledger.leave(seat)


class McpEndpoint:
    """An ASGI endpoint: authenticate like `/v1`, check the key may use the server, then hand over to MCP."""

    def __init__(self, kind: Literal["mcp", "server", "sse", "messages"]) -> None:
        self.kind = kind

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        conn = HTTPConnection(scope)
        try:
            http: McpHttp | None = hub_state(conn).extras.get("mcp_http")
            if http is None:
                raise ServiceUnavailable("The MCP hub is not running.", code="mcp_unavailable")
            principal = await authenticate(conn)  # first: unauthenticated callers learn nothing, not even names
            served = self._served(http, scope, principal) if self.kind in ("mcp", "server") else None
            app = self._target(http, scope, served)
        except HubError as exc:
            await error_response(with_challenge(exc, conn.headers))(scope, receive, send)
            return
        if self.kind in ("mcp", "sse") and opens_session(scope) and not may_use_any(principal, http.hub.upstreams):
            body = NO_SERVER.body(await request_id_of(scope, receive))  # it could hold sessions, and use nothing
            await send_json(send, body, None, NO_SERVER.status)
            return
        scope.setdefault("state", {})[PRINCIPAL_KEY] = principal
        scope["user"] = session_owner(principal)  # the SDK binds each session to it: other keys get 404
        token = CALLER.set(principal)
        try:
            here = JsonRpcErrors(app)
            # The replica holding the request's session, when that is not this one (Redis is asked only for a session
            # id this replica does not hold: a sticky or single-replica deployment pays a dict lookup).
            forwarder = http.forwarder
            if (
                forwarder is not None
                and served is not None
                and (owner := await forwarder.target(scope, served.manager.holds)) is not None
            ):
                await forwarder.forward(owner, scope, receive, send, otherwise=here)
            else:
                await here(scope, receive, send)
        finally:
            CALLER.reset(token)

    def _target(self, http: McpHttp, scope: Scope, served: _Served | None) -> Callable[[Scope, Receive, Send], Any]:
        if served is not None:
            return served.manager.handle_request
        if self.kind == "sse":  # a wrong method gets its 405 here, after auth and as JSON-RPC, like the others
            return http.serve_sse if scope["method"] == "GET" else Response(status_code=405, headers={"Allow": "GET"})
        return http.sse.handle_post_message  # "messages"

    def _served(self, http: McpHttp, scope: Scope, principal: Principal) -> _Served:
        """The served view the request names; a server the key may not use is answered as one that does not exist,
        so that a key limited to some servers cannot find out which others exist by trying names."""
        if self.kind == "mcp":
            return http.aggregated
        name = scope["path_params"]["server"]
        served = http.per_server.get(name)
        if served is None or not principal.may_use_server(name):
            raise NotFound(f"No MCP server named {name!r}.", code="server_not_found")
        return served


def mcp_routes() -> list[BaseRoute]:
    """The hub's routes; the REST inspection paths come before `/mcp/{server}`."""
    return [
        Route("/mcp/tools/list", rest.list_tools, methods=["GET"]),
        Route("/mcp/tools/call", rest.call_tool, methods=["POST"]),
        Route("/mcp", McpEndpoint("mcp")),
        Route("/mcp/", McpEndpoint("mcp")),
        Route("/mcp/{server}", McpEndpoint("server")),
        Route("/sse", McpEndpoint("sse")),
        Route(SSE_MESSAGES, McpEndpoint("messages")),
    ]


def mcp_extension(settings: McpSettings | None = None) -> Extension:
    """The lifespan extension: connect upstreams in the background, serve the transports, close all on exit."""

    @contextlib.asynccontextmanager
    async def extension(state: HubState) -> AsyncIterator[None]:
        chosen = settings or McpSettings.from_config(state.config)
        hub = McpHub(
            state.config.mcp_servers,
            separator=chosen.separator,
            on_tool_call=lambda call: state.usage.record_tool_call(call),
        )  # the sink may be replaced later
        config = state.config
        replica_url = config.worker_url or config.replica_url  # a worker's own port (hub/scale)
        forwarding = replica_forwarding(config.redis_url, replica_url, config.worker_registry, config.master_key)
        async with forwarding as forwarder:
            http = McpHttp(hub, chosen, forwarder)
            async with hub.running(), http.running():
                state.extras["mcp"] = hub
                state.extras["mcp_http"] = http
                state.extras.setdefault("readiness", {})["mcp"] = _readiness(hub)
                yield

    return extension


def _readiness(hub: McpHub) -> Callable[[], Any]:
    async def check() -> tuple[bool, dict[str, Any]]:
        # Ready once every upstream has had its first try: a down upstream is reported but never fails the hub.
        settled = all(u.first_attempt.is_set() for u in hub.upstreams.values())
        return settled, {name: status["state"] for name, status in hub.status().items()}

    return check


__all__ = ["McpHttp", "McpSettings", "mcp_extension", "mcp_routes", "transport_security"]
