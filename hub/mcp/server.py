"""The MCP server the hub serves: the aggregated catalog (`view=None`) or one upstream with its original names.

Every request is forwarded on the upstream's shared session inside the downstream handler, so a downstream cancel
or timeout cancels the upstream request too (mcp.md §6.4). Progress, logs and the upstream's sampling and
elicitation requests travel back to the downstream request that caused them (`DownstreamCaller`).
"""

from __future__ import annotations

import logging
from typing import Any

import mcp_types as types
from mcp.server import ServerRequestContext
from mcp.shared.exceptions import MCPError
from starlette.requests import HTTPConnection

from hub import __version__
from hub.accounts.auth import Principal
from hub.catalog.dispatch import is_meta
from hub.catalog.meta import CALL_TOOL
from hub.catalog.results import ResultError
from hub.catalog.service import CatalogService
from hub.mcp.caller import DownstreamCaller
from hub.mcp.catalog import Catalog, ToolInfo, visible
from hub.mcp.errors import InvalidArguments, McpHubError, UnknownTool
from hub.mcp.health import error_result
from hub.mcp.hub import McpHub
from hub.mcp.instructions import HubServer
from hub.mcp.modern import Bridges, Work, is_modern
from hub.mcp.notify import Downstreams, connection_of
from hub.mcp.routing import Caller
from hub.mcp.task_relay import TaskPassThrough
from hub.mcp.upstream import Upstream

logger = logging.getLogger("toolhub.mcp")

PRINCIPAL_KEY = "toolhub.mcp.principal"
"""Where the HTTP auth guard leaves the caller's `Principal` in the ASGI scope's `state`."""
RESOURCE_NOT_FOUND = -32002
Ctx = ServerRequestContext[Any, Any]


def _owner_of(principal: Principal) -> tuple[str | None, bool]:
    return principal.key_id, principal.is_master


def _client_name(ctx: Ctx) -> str | None:
    """The client's `clientInfo.name` from `initialize` (None on a 2026-era request without a session)."""
    params = ctx.session.client_params
    return params.client_info.name if params is not None else None


def _check_cursor(params: types.PaginatedRequestParams | None) -> None:
    """The hub answers every list in one page and hands out no cursors: any cursor is invalid (-32602, per spec)."""
    if params is not None and params.cursor is not None:
        raise MCPError(code=types.INVALID_PARAMS, message=f"Invalid cursor: {params.cursor!r}")


def principal_of(ctx: Ctx, default: Principal | None) -> Principal:
    """The caller, as authenticated by the HTTP guard; `default` where there is no HTTP request (stdio)."""
    request = ctx.request
    if isinstance(request, HTTPConnection):
        found = request.scope.get("state", {}).get(PRINCIPAL_KEY)
        if isinstance(found, Principal):
            return found
    if default is None:
        raise MCPError(code=types.INVALID_REQUEST, message="Unauthenticated request.")
    return default


def build_server(hub: McpHub, downstreams: Downstreams, *, view: str | None = None,
                 default_principal: Principal | None = None) -> HubServer:  # fmt: skip
    """The aggregated hub server (`view=None`) or the pass-through server of upstream `view`."""
    handlers = _Handlers(hub, downstreams, view, default_principal)
    name = "toolhub" if view is None else view
    server = HubServer(
        name,
        version=__version__,
        instructions=None if view is None else f"Toolhub pass-through to the MCP server {view!r}.",
        get_tool_input_schema=handlers.input_schema,
        on_list_tools=handlers.list_tools,
        on_call_tool=handlers.call_tool,
        on_list_resources=handlers.list_resources,
        on_list_resource_templates=handlers.list_templates,
        on_read_resource=handlers.read_resource,
        on_subscribe_resource=handlers.subscribe,
        on_unsubscribe_resource=handlers.unsubscribe,
        on_subscriptions_listen=handlers.listen,
        on_list_prompts=handlers.list_prompts,
        on_get_prompt=handlers.get_prompt,
        on_completion=handlers.complete,
    )
    server.watch(hub, view, default_principal)
    # Registered here rather than as `on_set_logging_level=`, which emits a deprecation warning (SEP-2577).
    server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, handlers.set_level)
    server.middleware.append(downstreams.middleware)
    server.middleware.append(TaskPassThrough(hub, view, lambda ctx: principal_of(ctx, default_principal)))
    return server


class _Handlers:
    def __init__(self, hub: McpHub, downstreams: Downstreams, view: str | None, default: Principal | None) -> None:
        self.hub = hub
        self.bridges = Bridges(lambda: hub.task_group)
        self.downstreams = downstreams
        self.view = view
        self.default = default

    def _catalog(self) -> Catalog:
        return self.hub.catalog_of(self.view)

    def _upstreams(self, principal: Principal) -> list[Upstream]:
        names = [self.view] if self.view is not None else list(self.hub.upstreams)
        found = [self.hub.upstreams.get(n) for n in names if principal.may_use_server(n)]
        return [u for u in found if u is not None and u.healthy]

    def input_schema(self, name: str) -> dict[str, Any] | None:
        info = self._catalog().tools_by_name.get(name)
        return info.input_schema if info is not None else None

    async def list_tools(self, ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        _check_cursor(params)
        principal = principal_of(ctx, self.default)
        tools = self._visible(self._catalog(), principal)
        if (service := self.hub.catalog_service) is not None:  # search mode by config and client (hub/catalog)
            return types.ListToolsResult(tools=service.mcp_tools(tools, _client_name(ctx)))
        return types.ListToolsResult(tools=[t.tool for t in tools])

    async def call_tool(self, ctx: Ctx, params: types.CallToolRequestParams) -> Any:
        principal = principal_of(ctx, self.default)
        try:
            if params.request_state is not None:  # a 2026-era retry with answers (hub.mcp.modern)
                return await self._interactive(ctx, params, "tools/call", 0.0, None)
            if (service := self.hub.catalog_service) is not None and is_meta(params.name):
                meta = lambda caller: self._meta(params, principal, caller, service)  # noqa: E731
                return await self._interactive(ctx, params, "tools/call", self._meta_timeout(params), meta)
            info = self.hub.resolve(params.name, principal, self.view)
            work = lambda caller: self._call(info, params.name, params.arguments, principal, caller)  # noqa: E731
            return await self._interactive(ctx, params, "tools/call", self._call_timeout(info), work)
        except (UnknownTool, InvalidArguments) as exc:
            raise MCPError(code=types.INVALID_PARAMS, message=exc.message) from None
        except McpHubError as exc:  # not permitted, or the upstream is down: the model can read why
            return error_result(exc.message)

    async def _call(self, info: ToolInfo, name: str, arguments: dict[str, Any] | None, principal: Principal,
                    caller: Caller) -> types.CallToolResult:  # fmt: skip
        """A resolved tool's upstream call within its server's `call_timeout`, the result fitted to the limit."""
        timeout = self._call_timeout(info)
        result = await self.hub.call_upstream(info, arguments, principal, timeout=timeout, caller=caller)
        return await self._fit(result, principal, info.server, name)

    def _call_timeout(self, info: ToolInfo) -> float:
        return self.hub.upstreams[info.server].spec.call_timeout

    def _visible(self, catalog: Catalog, principal: Principal) -> list[ToolInfo]:
        return [t for t in catalog.tools if visible(principal, t.server, t.original_name)]

    async def _fit(self, result: types.CallToolResult, principal: Principal, server: str,
                   name: str) -> types.CallToolResult:  # fmt: skip
        """A result over the limit: its head and a `resource_link` to the whole (hub/catalog/results.py)."""
        if (service := self.hub.catalog_service) is None:
            return result
        return await service.fit_result(result, principal.owner, server=server, tool=name)

    def _meta_timeout(self, params: types.CallToolRequestParams) -> float:
        """The `call_timeout` of the tool `hub__call_tool` names (or of the view); else the largest of all servers."""
        target = (params.arguments or {}).get("name") if params.name == CALL_TOOL else None
        try:
            return self.hub.server_call_timeout(self.view or str(target))
        except UnknownTool:
            return max((u.spec.call_timeout for u in self.hub.upstreams.values()), default=0.0)

    async def _meta(self, params: types.CallToolRequestParams, principal: Principal, caller: Caller,
                    service: CatalogService) -> types.CallToolResult:  # fmt: skip
        """`hub__search_tools`, `hub__describe_tool`, `hub__call_tool`, `hub__read_result` within this caller's view."""
        catalog = self._catalog()
        tools = self._visible(catalog, principal)

        async def call(name: str, arguments: dict[str, Any]) -> types.CallToolResult:
            return await self._call(self.hub.resolve(name, principal, self.view), name, arguments, principal, caller)

        return await service.call_meta(params.name, params.arguments, tools, catalog.tools, call, principal.owner,
                                       self.view)  # fmt: skip

    async def _interactive(self, ctx: Ctx, params: types.InputResponseRequestParams, method: str, timeout: float,
                           work: Work | None) -> Any:  # fmt: skip
        """Run `work` for the downstream request; a 2026-era client's runs across input round trips (hub.mcp.modern).

        Raises:
            MCPError: INVALID_PARAMS for a `requestState` the hub did not issue to this key for this method.
        """
        principal = principal_of(ctx, self.default)
        caller = DownstreamCaller(ctx, principal, self.hub.log_levels)
        owner = (*_owner_of(principal), method)
        if params.request_state is not None:
            bridge = self.bridges.resume(params.request_state, owner, params.input_responses)
            return await self.bridges.wait(bridge, caller)
        assert work is not None
        if is_modern(ctx.protocol_version) and self.bridges.available():
            bridge = self.bridges.start(owner, timeout, work, supports=caller.supports,
                                        wants_progress=caller.wants_progress)  # fmt: skip
            return await self.bridges.wait(bridge, caller)
        return await work(caller)

    async def listen(self, ctx: Ctx, params: types.SubscriptionsListenRequestParams) -> Any:
        """`subscriptions/listen`: resource updates only of servers this key may use."""
        principal = principal_of(ctx, self.default)

        def may_read(uri: str) -> bool:
            if self.view is not None:
                return principal.may_use_server(self.view)
            owner = self._catalog().owner_of_uri(uri)
            return owner is not None and principal.may_use_server(owner[0])

        return await self.downstreams.listen_as(ctx, params, may_read)

    async def list_resources(self, ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
        _check_cursor(params)
        principal = principal_of(ctx, self.default)
        return types.ListResourcesResult(
            resources=[r for server, r in self._catalog().resources if principal.may_use_server(server)]
        )

    async def list_templates(
        self, ctx: Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        _check_cursor(params)
        principal = principal_of(ctx, self.default)
        templates = [t for server, t in self._catalog().templates if principal.may_use_server(server)]
        return types.ListResourceTemplatesResult(resource_templates=templates)

    def _owner(self, ctx: Ctx, uri: str) -> tuple[Upstream, str]:
        """The upstream serving an exposed resource URI, and the URI as that upstream knows it."""
        principal = principal_of(ctx, self.default)
        found = self._catalog().owner_of_uri(uri)
        if found is None or not principal.may_use_server(found[0]) or found[0] not in self.hub.upstreams:
            raise MCPError(code=RESOURCE_NOT_FOUND, message=f"Resource not found: {uri}")
        return self.hub.upstreams[found[0]], found[1]

    async def read_resource(self, ctx: Ctx, params: types.ReadResourceRequestParams) -> Any:
        if (service := self.hub.catalog_service) is not None:  # toolhub://results/<handle>: a stored tool result
            try:
                stored = await service.read_resource(params.uri, principal_of(ctx, self.default).owner)
            except ResultError as exc:
                raise MCPError(code=RESOURCE_NOT_FOUND, message=exc.message) from None
            if stored is not None:
                return stored
        if params.request_state is not None:
            upstream, uri = None, params.uri
        else:
            upstream, uri = self._owner(ctx, params.uri)
        request = types.ReadResourceRequest(params=types.ReadResourceRequestParams(uri=uri))
        result = await self._interactive(ctx, params, "resources/read", self._timeout(upstream),
                                         self._forwarding(upstream, request, types.ReadResourceResult))  # fmt: skip
        if uri == params.uri or not isinstance(result, types.ReadResourceResult):
            return result
        contents = [c.model_copy(update={"uri": params.uri}) if c.uri == uri else c for c in result.contents]
        return result.model_copy(update={"contents": contents})

    async def subscribe(self, ctx: Ctx, params: types.SubscribeRequestParams) -> types.EmptyResult:
        upstream, uri = self._owner(ctx, params.uri)
        upstream.subscribed = True
        if upstream.capabilities.resources and upstream.capabilities.resources.subscribe:
            request = types.SubscribeRequest(params=types.SubscribeRequestParams(uri=uri))
            await self._forward(upstream, request, types.EmptyResult, ctx)
        self.downstreams.subscribe(ctx, params.uri)
        return types.EmptyResult()

    async def unsubscribe(self, ctx: Ctx, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
        self.downstreams.unsubscribe(ctx, params.uri)
        upstream, uri = self._owner(ctx, params.uri)
        if upstream.per_client and self.hub.sessions.existing(upstream, connection_of(ctx)) is None:
            return types.EmptyResult()  # the client's own session closed (idle), its subscription with it
        if upstream.capabilities.resources and upstream.capabilities.resources.subscribe:
            request = types.UnsubscribeRequest(params=types.UnsubscribeRequestParams(uri=uri))
            await self._forward(upstream, request, types.EmptyResult, ctx)
        return types.EmptyResult()

    async def list_prompts(self, ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
        _check_cursor(params)
        principal = principal_of(ctx, self.default)
        return types.ListPromptsResult(
            prompts=[p.prompt for p in self._catalog().prompts if principal.may_use_server(p.server)]
        )

    async def get_prompt(self, ctx: Ctx, params: types.GetPromptRequestParams) -> Any:
        if params.request_state is not None:
            return await self._interactive(ctx, params, "prompts/get", 0.0, None)
        principal = principal_of(ctx, self.default)
        info = self._catalog().prompts_by_name.get(params.name)
        if info is None or not principal.may_use_server(info.server):
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown prompt: {params.name}")
        request = types.GetPromptRequest(
            params=types.GetPromptRequestParams(name=info.original_name, arguments=params.arguments)
        )
        upstream = self.hub.upstreams[info.server]
        return await self._interactive(ctx, params, "prompts/get", self._timeout(upstream),
                                       self._forwarding(upstream, request, types.GetPromptResult))  # fmt: skip

    async def complete(self, ctx: Ctx, params: types.CompleteRequestParams) -> types.CompleteResult:
        principal = principal_of(ctx, self.default)
        ref = params.ref
        if isinstance(ref, types.PromptReference):
            info = self._catalog().prompts_by_name.get(ref.name)
            server = info.server if info is not None and principal.may_use_server(info.server) else None
            ref = ref.model_copy(update={"name": info.original_name}) if info is not None else ref
        else:
            found = self._catalog().owner_of_uri(ref.uri)
            server = found[0] if found is not None and principal.may_use_server(found[0]) else None
            ref = ref.model_copy(update={"uri": found[1]}) if found is not None else ref
        upstream = self.hub.upstreams.get(server) if server is not None else None
        if upstream is None or not upstream.healthy or upstream.capabilities.completions is None:
            return types.CompleteResult(completion=types.Completion(values=[], total=0, has_more=False))
        request = types.CompleteRequest(
            params=types.CompleteRequestParams(ref=ref, argument=params.argument, context=params.context)
        )
        return await self._forward(upstream, request, types.CompleteResult, ctx)

    async def set_level(self, ctx: Ctx, params: types.SetLevelRequestParams) -> types.EmptyResult:
        """This session's level; shared upstreams get the most verbose level of all sessions (`hub.mcp.levels`), the
        client's own sessions its level (one it opens later gets it when it connects). No process is started here."""
        principal = principal_of(ctx, self.default)
        connection = connection_of(ctx)
        levels = self.hub.log_levels
        if levels.set(connection, params.level):
            connection.exit_stack.callback(self._level_ended, connection)
        shared = levels.most_verbose() or params.level
        caller = DownstreamCaller(ctx, principal, levels)
        for upstream in self._upstreams(principal):
            target = self.hub.sessions.existing(upstream, connection) if upstream.per_client else upstream
            if target is None:
                continue
            try:
                await target.set_log_level(shared if target is upstream else params.level, caller)
            except (McpHubError, MCPError) as exc:  # one server's failure does not fail the others
                logger.warning("MCP server %s: logging/setLevel failed: %s", upstream.name, exc)
        return types.EmptyResult()

    def _level_ended(self, connection: object) -> None:
        """A session that set a level ended: shared upstreams go back to the most verbose level of those left."""
        self.hub.log_levels.forget(connection)
        group = self.hub.task_group
        if group is not None and self.hub.log_levels.most_verbose() is not None:
            group.start_soon(self._relevel, name="mcp-log-level-after-session-end")

    async def _relevel(self) -> None:
        for upstream in list(self.hub.upstreams.values()):
            level = self.hub.log_levels.most_verbose()  # read again each time: a session may set a level meanwhile
            if level is None or upstream.per_client or upstream.log_level is None:
                continue  # a client's own sessions end with it; an upstream no session set keeps its level
            try:
                await upstream.set_log_level(level)
            except Exception as exc:  # in the hub's task group: one server's failure must not end the hub's tasks
                logger.warning("MCP server %s: logging/setLevel failed: %r", upstream.name, exc)

    def _timeout(self, upstream: Upstream | None) -> float:
        return upstream.spec.call_timeout if upstream is not None else 0.0

    def _forwarding(self, upstream: Upstream | None, request: Any, result_type: Any) -> Work | None:
        if upstream is None:
            return None

        async def work(caller: Caller) -> Any:
            return await self._send(upstream, request, result_type, caller)

        return work

    async def _forward(self, upstream: Upstream, request: Any, result_type: Any, ctx: Ctx) -> Any:
        caller = DownstreamCaller(ctx, principal_of(ctx, self.default), self.hub.log_levels)
        return await self._send(upstream, request, result_type, caller)

    async def _send(self, upstream: Upstream, request: Any, result_type: Any, caller: Caller) -> Any:
        """One request on the upstream's session; an unavailable upstream is a JSON-RPC error for the client."""
        try:
            async with self.hub.sessions.using(upstream, caller) as target:
                return await target.request(request, result_type, read_timeout=upstream.spec.call_timeout,
                                            caller=caller)  # fmt: skip
        except McpHubError as exc:
            raise MCPError(code=types.INTERNAL_ERROR, message=exc.message) from None
