"""The MCP server: five database tools over a `Database`, with failures returned as is_error tool results."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import mcp_types as types
from mcp.server import Server, ServerRequestContext

from tools.postgres_db._limits import Limits, QuerySlots
from tools.postgres_db.databases import Database, DatabaseError, JSONValue, QueryResult, dumps

logger = logging.getLogger(__name__)

DEFAULT_MAX_ROWS = 500

ToolHandler = Callable[[Mapping[str, Any]], Awaitable[dict[str, JSONValue]]]


class ArgumentError(Exception):
    """A tool argument is missing or has the wrong type."""


def build_server(db: Database, *, max_rows: int = DEFAULT_MAX_ROWS, name: str = "postgres_db") -> Server[Any]:
    """Build a low-level MCP server exposing `db` through five tools; the lifespan opens the database."""
    handlers = _handlers(db, max_rows)
    tools = _tool_specs(db, max_rows)
    schemas = {tool.name: tool.input_schema for tool in tools}

    @asynccontextmanager
    async def lifespan(_server: Server[Any]) -> AsyncIterator[dict[str, Any]]:
        async with db.connected():
            yield {}

    async def on_list_tools(
        _ctx: ServerRequestContext[Any], _params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def on_call_tool(
        _ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        handler = handlers.get(params.name)
        if handler is None:
            return _error(f"Unknown tool {params.name!r}; available tools: {', '.join(handlers)}.")
        try:
            return _success(await handler(params.arguments or {}))
        except (ArgumentError, DatabaseError) as exc:
            return _error(str(exc))
        except Exception as exc:  # top-level handler: a tool failure must never become a protocol error
            logger.exception("Tool %s failed", params.name)
            return _error(f"Internal error in {params.name}: {type(exc).__name__}: {exc}")

    return Server(
        name,
        version="0.1.0",
        instructions=f"Explore and query a {db.dialect} database: list_tables, describe_table, "
        "get_table_constraints and get_table_stats before execute_query.",
        lifespan=lifespan,
        get_tool_input_schema=schemas.get,
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
    )


def _handlers(db: Database, max_rows: int) -> dict[str, ToolHandler]:
    """Map tool names to coroutines that validate arguments and call the database."""
    slots = QuerySlots(db.limits)

    async def list_tables(args: Mapping[str, Any]) -> dict[str, JSONValue]:
        return await db.list_tables(_optional_str(args, "schema"))

    async def describe_table(args: Mapping[str, Any]) -> dict[str, JSONValue]:
        return await db.describe_table(_required_str(args, "table"), _optional_str(args, "schema"))

    async def get_table_constraints(args: Mapping[str, Any]) -> dict[str, JSONValue]:
        return await db.table_constraints(_required_str(args, "table"), _optional_str(args, "schema"))

    async def get_table_stats(args: Mapping[str, Any]) -> dict[str, JSONValue]:
        table = _required_str(args, "table")
        if _is_toolhub_table(table) and not db.allow_toolhub_tables:
            raise ArgumentError("Toolhub's own tables (toolhub_*) have no statistics through this tool.")
        exact = _optional_bool(args, "exact_count")
        return await db.table_stats(table, _optional_str(args, "schema"), bool(exact))

    async def execute_query(args: Mapping[str, Any]) -> dict[str, JSONValue]:
        limit = min(_optional_int(args, "max_rows") or max_rows, max_rows)
        sql, params = _required_str(args, "sql"), _optional_list(args, "params")
        async with slots.slot():
            result = await db.execute(sql, params, limit)
        payload: dict[str, JSONValue] = {
            "columns": result.columns,
            "rows": result.rows,
            "row_count": len(result.rows),
            "truncated": result.truncated,
        }
        if result.status is not None:
            payload["status"] = result.status
        if note := _result_note(result, db.limits):
            payload["note"] = note
        return payload

    return {
        "list_tables": list_tables,
        "describe_table": describe_table,
        "execute_query": execute_query,
        "get_table_constraints": get_table_constraints,
        "get_table_stats": get_table_stats,
    }


def _result_note(result: QueryResult, limits: Limits) -> str | None:
    """Explain every limit that shortened the result, or None."""
    notes: list[str] = []
    if result.byte_limit is not None:
        notes.append(
            f"Returned the first {len(result.rows)} rows: the result reached this server's limit of "
            f"{result.byte_limit} bytes. Select fewer or shorter columns, aggregate, or page with LIMIT/OFFSET."
        )
    elif result.truncated:
        notes.append(
            f"Returned the first {len(result.rows)} rows; more rows exist. "
            "Add a WHERE clause, aggregate, or use LIMIT/OFFSET to page."
        )
    if result.cut_values:
        notes.append(
            f"{result.cut_values} value(s) longer than {limits.max_value_bytes} bytes were cut "
            "(marked '…[cut by postgres_db: …]'); use left(), substr() or length() to read them in parts."
        )
    return " ".join(notes) or None


def _is_toolhub_table(table: str) -> bool:
    """Whether a table argument ("name" or "schema.name") names one of Toolhub's own tables."""
    return table.rpartition(".")[2].strip('"').lower().startswith("toolhub_")


def _tool_specs(db: Database, max_rows: int) -> list[types.Tool]:
    """Describe the five tools with plain JSON schemas every LLM provider accepts."""
    schema = _string(f"Schema name (default {db.default_schema!r}).")
    table = _string("Table or view name, exactly as listed by list_tables.")
    placeholder = "$1, $2, ..." if db.dialect == "postgresql" else "?"
    read_only = types.ToolAnnotations(read_only_hint=True, open_world_hint=False)
    writes = db.allow_writes
    return [
        _tool("list_tables", "List the tables and views in a schema.", {"schema": schema}, [], read_only),
        _tool(
            "describe_table",
            "Describe a table's columns: name, type, nullable, default and whether it is part of the primary key.",
            {"table": table, "schema": schema},
            ["table"],
            read_only,
        ),
        _tool(
            "execute_query",
            f"Run one SQL statement against the {db.dialect} database and return its rows "
            f"({'writes are allowed' if writes else 'read-only'}; at most {max_rows} rows and "
            f"{db.limits.max_result_bytes} bytes are returned, values over {db.limits.max_value_bytes} bytes are cut). "
            f"Use {placeholder} placeholders with params instead of inlining values.",
            {
                "sql": _string("A single SQL statement."),
                "params": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": f"Values for the {placeholder} placeholders, in order. Strings are converted to "
                    "the placeholder's type; numbers, booleans and null (SQL NULL) are accepted too.",
                },
                "max_rows": {"type": "integer", "description": f"Maximum rows to return (1-{max_rows})."},
            },
            ["sql"],
            types.ToolAnnotations(read_only_hint=not writes, destructive_hint=writes, open_world_hint=False),
        ),
        _tool(
            "get_table_constraints",
            "List a table's primary key, foreign keys, unique constraints and check constraints.",
            {"table": table, "schema": schema},
            ["table"],
            read_only,
        ),
        _tool(
            "get_table_stats",
            "Row count, size on disk and per-column statistics (null fraction, distinct values, common values).",
            {
                "table": table,
                "schema": schema,
                "exact_count": {
                    "type": "boolean",
                    "description": "Count rows exactly even for large tables (slower; estimates are always given).",
                },
            },
            ["table"],
            read_only,
        ),
    ]


def _tool(
    name: str,
    description: str,
    properties: dict[str, Any],
    required: list[str],
    annotations: types.ToolAnnotations,
) -> types.Tool:
    """Build a Tool with an object input schema."""
    input_schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        input_schema["required"] = required
    return types.Tool(name=name, description=description, input_schema=input_schema, annotations=annotations)


def _string(description: str) -> dict[str, Any]:
    """A string property."""
    return {"type": "string", "description": description}


def _success(payload: dict[str, JSONValue]) -> types.CallToolResult:
    """Wrap a payload as structured content plus the same JSON as text."""
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=dumps(payload))], structured_content=payload
    )


def _error(message: str) -> types.CallToolResult:
    """Build an is_error result carrying `message`."""
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)], is_error=True)


def _required_str(args: Mapping[str, Any], key: str) -> str:
    """Read a required non-empty string argument."""
    value = args.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ArgumentError(f"Argument {key!r} is required and must be a non-empty string.")
    return value


def _optional_str(args: Mapping[str, Any], key: str) -> str | None:
    """Read an optional string argument; empty means absent."""
    value = args.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ArgumentError(f"Argument {key!r} must be a string.")
    return value


def _optional_int(args: Mapping[str, Any], key: str) -> int | None:
    """Read an optional positive integer argument (integral floats and digit strings are accepted)."""
    value = args.get(key)
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ArgumentError(f"Argument {key!r} must be a positive integer.")
    return value


def _optional_bool(args: Mapping[str, Any], key: str) -> bool | None:
    """Read an optional boolean argument."""
    value = args.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise ArgumentError(f"Argument {key!r} must be true or false.")


def _optional_list(args: Mapping[str, Any], key: str) -> list[JSONValue]:
    """Read an optional array argument."""
    value = args.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ArgumentError(f"Argument {key!r} must be an array.")
    return value  # pyright: ignore[reportUnknownVariableType]
