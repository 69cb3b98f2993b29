"""Command line: `python -m tools.postgres_db [--dsn DSN] [--transport stdio|http] ...`; logs go to stderr only."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import uvicorn
from mcp.server import Server
from mcp.server.stdio import stdio_server

from tools.postgres_db._limits import Limits
from tools.postgres_db.databases import Database, DatabaseError
from tools.postgres_db.postgres import AsyncpgDatabase
from tools.postgres_db.server import DEFAULT_MAX_ROWS, build_server
from tools.postgres_db.sqlite import SqliteDatabase

logger = logging.getLogger("tools.postgres_db")

DSN_ENV_VARS = ("POSTGRES_DB_DSN", "DATABASE_URL")
FLAG_ENV_VARS = {
    "allow_unsafe_role": "POSTGRES_DB_ALLOW_UNSAFE_ROLE",
    "allow_toolhub_tables": "POSTGRES_DB_ALLOW_TOOLHUB_TABLES",
}
"""Flags that can also be switched on by setting the variable to 1, true or yes."""
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
DEMO_SQL = Path(__file__).with_name("demo.sql")
"""The demo shop --demo serves; the compose file loads the same file into PostgreSQL."""


def parse_args(argv: Sequence[str] | None, environ: Mapping[str, str]) -> argparse.Namespace:
    """Parse the command line; the DSN falls back to $POSTGRES_DB_DSN, then $DATABASE_URL."""
    parser = argparse.ArgumentParser(prog="python -m tools.postgres_db", description=__doc__)
    parser.add_argument("--dsn", help="postgresql://..., sqlite:///relative.db, sqlite:////abs.db or a *.db path")
    parser.add_argument("--demo", action="store_true", help="serve a small demo shop (in-memory SQLite, read-only)")
    parser.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="HTTP port; 0 picks a free one (default 8000)")
    parser.add_argument("--allow-writes", action="store_true", help="allow INSERT/UPDATE/DDL (default: read-only)")
    parser.add_argument("--statement-timeout", type=float, default=30.0, help="seconds per statement (default 30)")
    parser.add_argument("--max-rows", type=int, default=DEFAULT_MAX_ROWS, help="row limit per query (default 500)")
    parser.add_argument("--schema", default="public", help="default PostgreSQL schema (default public)")
    parser.add_argument("--log-level", default="WARNING", help="stderr log level (default WARNING)")
    _add_safety_arguments(parser)
    args = parser.parse_args(argv)
    if args.demo and args.dsn:
        parser.error("--demo serves its own database: leave out --dsn")
    if not args.demo:  # --demo ignores $DATABASE_URL, which may well be the hub's own database
        args.dsn = args.dsn or next((environ[name] for name in DSN_ENV_VARS if environ.get(name)), None)
    if not args.dsn and not args.demo:
        parser.error(f"no database: pass --dsn or set {' or '.join(DSN_ENV_VARS)} (or --demo)")
    for flag, name in FLAG_ENV_VARS.items():
        setattr(args, flag, getattr(args, flag) or environ.get(name, "").lower() in ("1", "true", "yes"))
    numbers = (args.statement_timeout, args.max_rows, args.max_value_bytes, args.max_result_bytes)
    if min(numbers) <= 0 or args.max_concurrent_queries < 1 or args.queue_timeout <= 0:
        parser.error("timeouts, row, byte and concurrency limits must be positive")
    return args


def _add_safety_arguments(parser: argparse.ArgumentParser) -> None:
    """The limits and the switches that loosen the read-only guarantees."""
    limits = Limits()
    parser.add_argument(
        "--allow-unsafe-role",
        action="store_true",
        help="PostgreSQL: start even as a superuser or a role that can write ($POSTGRES_DB_ALLOW_UNSAFE_ROLE=1)",
    )
    parser.add_argument(
        "--allow-toolhub-tables",
        action="store_true",
        help="let queries read Toolhub's own toolhub_* tables ($POSTGRES_DB_ALLOW_TOOLHUB_TABLES=1)",
    )
    parser.add_argument(
        "--max-value-bytes", type=int, default=limits.max_value_bytes, help="longer values are cut (default 64 KiB)"
    )
    parser.add_argument(
        "--max-result-bytes", type=int, default=limits.max_result_bytes, help="rows stop at this size (default 1 MiB)"
    )
    parser.add_argument(
        "--max-concurrent-queries",
        type=int,
        default=limits.max_concurrent_queries,
        help=f"execute_query calls running at once; others queue (default {limits.max_concurrent_queries})",
    )
    parser.add_argument(
        "--queue-timeout",
        type=float,
        default=limits.queue_timeout,
        help=f"seconds a call queues before a 'busy' error (default {limits.queue_timeout:g})",
    )


def database_from_args(args: argparse.Namespace) -> Database:
    """Pick the backend from the DSN scheme.

    Raises:
        ValueError: the DSN is neither PostgreSQL nor SQLite, or a read-only SQLite file does not exist.
    """
    limits = Limits(
        max_value_bytes=args.max_value_bytes,
        max_result_bytes=args.max_result_bytes,
        max_concurrent_queries=args.max_concurrent_queries,
        queue_timeout=args.queue_timeout,
    )
    common: dict[str, Any] = {
        "allow_writes": args.allow_writes,
        "statement_timeout": args.statement_timeout,
        "limits": limits,
        "allow_toolhub_tables": args.allow_toolhub_tables,
    }
    if args.demo:
        return SqliteDatabase(":memory:", seed=DEMO_SQL.read_text(encoding="utf-8"), **common)
    dsn: str = args.dsn
    if dsn.startswith(("postgresql://", "postgres://")):
        return AsyncpgDatabase(dsn, schema=args.schema, allow_unsafe_role=args.allow_unsafe_role, **common)
    path = sqlite_path(dsn)
    if path != ":memory:" and not args.allow_writes and not Path(path).is_file():
        raise ValueError(f"SQLite database {path!r} does not exist (it is only created with --allow-writes)")
    return SqliteDatabase(path, **common)


async def check_start(db: Database) -> None:
    """Open and close the database once, so an unsafe PostgreSQL role stops the server before it serves.

    Raises:
        DatabaseError: the role is unsafe (UnsafeRole) or the database cannot be opened.
    """
    async with db.connected():
        pass


def sqlite_path(dsn: str) -> str:
    """Return the file path of a SQLite DSN (SQLAlchemy style: three slashes relative, four absolute).

    Raises:
        ValueError: the DSN is not a SQLite URL or a path ending in .db/.sqlite/.sqlite3.
    """
    if dsn.startswith("sqlite:///"):
        return dsn.removeprefix("sqlite:///")
    if dsn.lower().endswith(_SQLITE_SUFFIXES) and "://" not in dsn:
        return dsn
    raise ValueError(f"unsupported DSN {dsn.split('://')[0]!r}: use postgresql://, sqlite:/// or a *.db path")


async def serve_stdio(server: Server[Any]) -> None:
    """Serve one MCP session over stdin/stdout."""
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


async def serve_http(server: Server[Any], host: str, port: int) -> None:
    """Serve streamable HTTP at /mcp; the bound URL is logged to stderr (useful with --port 0)."""
    app = server.streamable_http_app(host=host)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    sock.listen(1024)  # accept connections before the URL is announced, so a reader can connect at once
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    sys.stderr.write(f"postgres_db MCP server listening on http://{host}:{bound_port}/mcp\n")
    sys.stderr.flush()
    await uvicorn.Server(config).serve(sockets=[sock])


def main(argv: Sequence[str] | None = None) -> None:
    """Parse arguments, build the server and run it on the chosen transport."""
    args = parse_args(argv, os.environ)  # the standalone tool's only environment read
    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        db = database_from_args(args)
        anyio.run(check_start, db)
    except (ValueError, DatabaseError) as exc:
        sys.exit(f"error: {exc}")
    server = build_server(db, max_rows=args.max_rows)
    if args.transport == "http":
        anyio.run(serve_http, server, args.host, args.port)
    else:
        anyio.run(serve_stdio, server)


if __name__ == "__main__":
    main()
