"""MCP: each upstream server's state, its tools with their schemas, and a form made from a schema that calls a tool
through `/mcp/tools/call`."""

from __future__ import annotations

from typing import Any, cast

import orjson
from starlette.requests import Request
from starlette.responses import Response

from hub.mcp.lines import exact_dumps
from hub.ui.api import call_api
from hub.ui.session import Session
from hub.ui.web import fragment, page, read_form, render

ARG = "arg:"
_KINDS = {"integer": "an integer", "number": "a number"}


@page
async def mcp_page(request: Request, session: Session) -> Response:
    listing = await call_api(request, session, "GET", "/mcp/tools/list")
    body = listing.body if listing.ok else {"tools": [], "servers": {}}
    return render(request, "mcp.html", session, tools=_with_forms(body["tools"]), servers=body["servers"],
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
    return render(request, "mcp.html", session, tools=_with_forms(list(tools.values())), servers={}, outcome=outcome)


def _with_forms(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**tool, "fields": form_fields(tool.get("input_schema"))} for tool in tools]


def form_fields(schema: Any) -> list[dict[str, Any]]:
    """The form's inputs for a tool's input schema, read as the untrusted JSON an upstream sent: a property that is
    no object, a `type` that is no string, an `enum` that is no list or a `required` that is no list each fall back
    to a plain text field, so one odd tool cannot take the page down for every user."""
    properties = _mapping(_mapping(schema).get("properties"))
    required = _required(_mapping(schema))
    return [_field(str(name), _mapping(spec), name in required) for name, spec in properties.items()]


def _field(name: str, spec: dict[str, Any], required: bool) -> dict[str, Any]:
    kind, enum, description = spec.get("type"), spec.get("enum"), spec.get("description")
    return {"name": name, "required": required, "kind": kind if isinstance(kind, str) else None,
            "enum": [_text(v) for v in cast(list[Any], enum)] if isinstance(enum, list) and enum else None,
            "default": spec.get("default"), "has_default": "default" in spec,
            "description": description if isinstance(description, str) else None}  # fmt: skip


def _mapping(value: Any) -> dict[str, Any]:
    return cast(dict[str, Any], value) if isinstance(value, dict) else {}


def _required(schema: dict[str, Any]) -> list[str]:
    names = schema.get("required")
    return [n for n in cast(list[Any], names) if isinstance(n, str)] if isinstance(names, list) else []


def _text(value: Any) -> str:
    """A schema value as a form writes it: a string as it is, anything else as JSON."""
    return value if isinstance(value, str) else exact_dumps(value).decode()


def arguments_from_form(form: dict[str, str], schema: dict[str, Any]) -> dict[str, Any]:
    """Typed arguments from `arg:<name>` fields: numbers, booleans, and JSON for objects and arrays.

    Raises:
        ValueError: a value does not fit its type (the message names the field).
    """
    arguments: dict[str, Any] = {}
    for name, spec in _mapping(schema.get("properties")).items():
        kind = _mapping(spec).get("type")
        raw = form.get(ARG + name)
        if kind == "boolean":
            if ARG + name in form or name in _required(schema):
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
