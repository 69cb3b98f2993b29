"""REST inspection of the hub: `GET /mcp/tools/list` and `POST /mcp/tools/call`, keyed like `/v1`.

Both take the Host/Origin checks of the MCP transports (DNS-rebinding protection). A call's body is read as JSON
whatever its `Content-Type`, as `/v1` reads it (`curl -d` sends `application/x-www-form-urlencoded`). That is safe
against cross-site requests even though a web form can POST a JSON-looking `text/plain` body: a browser sends the
page's `Origin` with every cross-origin POST and a foreign one is refused (403); a form cannot set the `Authorization`
header, and Toolhub uses no cookies, so a forged request carries no key (401); and a rebinding DNS name fails the
`Host` check (421).
"""

from __future__ import annotations

from typing import Any

import pydantic_core
from mcp.server.transport_security import TransportSecurityMiddleware
from starlette.requests import Request
from starlette.responses import Response

from hub.catalog.dispatch import is_meta
from hub.errors import (
    BadRequest,
    MisdirectedRequest,
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
)
from hub.gateway.requests import read_json_body
from hub.mcp.errors import InvalidArguments, UnknownTool, UpstreamUnavailable
from hub.mcp.hub import McpHub
from hub.mcp.lines import exact_dumps, inexact
from hub.state import authenticate, hub_state


async def _hub(request: Request) -> McpHub:
    """The running hub, once the request passed the transports' Host/Origin checks.

    Raises:
        ServiceUnavailable, MisdirectedRequest (foreign Host), PermissionDenied (foreign Origin)
    """
    extras = hub_state(request).extras
    hub: McpHub | None = extras.get("mcp")
    http = extras.get("mcp_http")
    if hub is None or http is None:
        raise ServiceUnavailable("The MCP hub is not running.", code="mcp_unavailable")
    rejected = await TransportSecurityMiddleware(http.security).validate_request(request)
    if rejected is not None and rejected.status_code == 421:
        raise MisdirectedRequest(f"Host {request.headers.get('host')!r} is not allowed.", code="invalid_host")
    if rejected is not None:
        raise PermissionDenied(f"Origin {request.headers.get('origin')!r} is not allowed.", code="invalid_origin")
    return hub


async def list_tools(request: Request) -> Response:
    """Every tool the key may use, with its server, names, schema, and each upstream's health."""
    hub = await _hub(request)
    principal = await authenticate(request)
    tools = [
        {"name": t.name, "server": t.server, "original_name": t.original_name, "description": t.description,
         "input_schema": t.input_schema}
        for t in hub.tools(principal)
    ]  # fmt: skip
    servers = {name: status for name, status in hub.status().items() if principal.may_use_server(name)}
    return _exact_response({"tools": tools, "servers": servers})  # a schema may hold a big integer too


async def call_tool(request: Request) -> Response:
    """Call a tool by its prefixed name; answers the MCP `CallToolResult` (a tool failure is 200 `isError`)."""
    hub = await _hub(request)
    principal = await authenticate(request)
    name, arguments = _parse(await _exact_body(request))
    if (service := hub.catalog_service) is not None and is_meta(name):  # hub__search_tools & co., in the key's tools
        result = await service.call_meta(name, arguments, hub.tools(principal), hub.catalog.tools,
                                         lambda n, a: hub.call_tool(n, a, principal), principal.owner)  # fmt: skip
        return _exact_response(result.model_dump(by_alias=True, mode="json", exclude_none=True))
    try:
        result = await hub.call_tool(name, arguments, principal)
    except UnknownTool as exc:  # ToolNotPermitted too: a scoped key cannot tell a forbidden tool from a made-up one
        raise NotFound(exc.message, code="tool_not_found", param="name") from None
    except InvalidArguments as exc:
        raise BadRequest(exc.message, code="invalid_arguments", param="arguments") from None
    except UpstreamUnavailable as exc:
        raise ServiceUnavailable(
            exc.message, code="mcp_server_unavailable", headers={"retry-after": "5", "x-should-retry": "true"}
        ) from None
    return _exact_response(result.model_dump(by_alias=True, mode="json", exclude_none=True))


async def _exact_body(request: Request) -> Any:
    """The body as `/v1` reads it (its limits and 400s), read again the SDK's way when orjson may have made an integer
    beyond 64 bits a float (`hub.mcp.lines.inexact`): the value then reaches the upstream exactly, as over `/mcp`."""
    payload = await read_json_body(request, hub_state(request).config.max_request_bytes)
    raw = await request.body()  # kept by the reader: not read off the wire twice
    return pydantic_core.from_json(raw) if inexact(raw) else payload


def _exact_response(body: Any) -> Response:
    """`json_response`, but an integer beyond 64 bits (which orjson refuses) is written exactly."""
    return Response(exact_dumps(body), media_type="application/json")


def _parse(payload: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(payload, dict):
        raise BadRequest('The body must be a JSON object: {"name": ..., "arguments": {...}}.', code="invalid_body")
    name = payload.get("name")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    if not isinstance(name, str) or not name:
        raise BadRequest("'name' must be the tool's prefixed name, a non-empty string.", param="name")
    arguments = payload.get("arguments")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise BadRequest("'arguments' must be a JSON object.", param="arguments")
    return name, arguments  # pyright: ignore[reportUnknownVariableType]
