"""MCP: each upstream server's state, its tools with their schemas, and a form made from a schema that calls a tool
through `/mcp/tools/call`."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from hub.ui.api import call_api
from hub.ui.session import Session
from hub.ui.web import fragment, page, read_form, render

ARG = "arg:"
_KINDS = {"integer": "an integer", "number": "a number"}


@page
async def mcp_page(request: Request, session: Session) -> Response:
    listing = await call_api(request, session, "GET", "/mcp/tools/list")
    body = listing.body if listing.ok else {"tools": [], "servers": {}}
    return render(request, "mcp.html", session, tools=body["tools"], servers=body["servers"],
                  error=None if listing.ok else listing.error)  # fmt: skip


@page
async def call_tool(request: Request, session: Session) -> Response:
    """Build the arguments from the form, typed by the tool's input schema, then call it as this session's key."""
    form = await read_form(request)
    name = form.get("name", "")
    listing = await call_api(request, session, "GET", "/mcp/tools/list")
    tools = {t["name"]: t for t in (listing.body["tools"] if listing.ok else [])}
    outcome: dict[str, Any] = {"name": name}
    try:
        arguments = arguments_from_form(form, (tools.get(name) or {}).get("input_schema") or {})
    except ValueError as exc:
        outcome["error"] = str(exc)
    else:
        result = await call_api(
            request, session, "POST", "/mcp/tools/call", body={"name": name, "arguments": arguments}
        )
        outcome.update(result=result.body if result.ok else None, error=None if result.ok else result.error)
    if fragment(request):
        return render(request, "_tool_result.html", session, outcome=outcome)
    return render(request, "mcp.html", session, tools=list(tools.values()), servers={}, outcome=outcome)


def arguments_from_form(form: dict[str, str], schema: dict[str, Any]) -> dict[str, Any]:
    """Typed arguments from `arg:<name>` fields: numbers, booleans, and JSON for objects and arrays.

    Raises:
        ValueError: a value does not fit its type (the message names the field).
    """
    properties: dict[str, Any] = schema.get("properties") or {}
    arguments: dict[str, Any] = {}
    for name, spec in properties.items():
        kind = spec.get("type") if isinstance(spec, dict) else None
        raw = form.get(ARG + name)
        if kind == "boolean":
            if ARG + name in form or name in (schema.get("required") or []):
                arguments[name] = raw == "true"
        elif raw is not None:
            arguments[name] = _typed(name, kind, raw)
    return arguments


def _typed(name: str, kind: Any, raw: str) -> Any:
    try:
        if kind == "integer":
            return int(raw)
        if kind == "number":
            return float(raw)
        if kind in ("string", None) or (isinstance(kind, list) and "string" in kind):
            return raw
        return orjson.loads(raw)
    except (ValueError, orjson.JSONDecodeError) as exc:
        expected = _KINDS.get(kind, "JSON") if isinstance(kind, str) else "JSON"
        raise ValueError(f"'{name}' must be {expected}.") from exc
