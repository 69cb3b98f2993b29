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

from tools.postgres_db.databases import Database
from tools.postgres_db.postgres import AsyncpgDatabase
from tools.postgres_db.server import DEFAULT_MAX_ROWS, build_server
from tools.postgres_db.sqlite import SqliteDatabase

logger = logging.getLogger("tools.postgres_db")

DSN_ENV_VARS = ("POSTGRES_DB_DSN", "DATABASE_URL")
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def parse_args(argv: Sequence[str] | None, environ: Mapping[str, str]) -> argparse.Namespace:
    """Parse the command line; the DSN falls back to $POSTGRES_DB_DSN, then $DATABASE_URL."""
    parser = argparse.ArgumentParser(prog="python -m tools.postgres_db", description=__doc__)
    parser.add_argument("--dsn", help="postgresql://..., sqlite:///relative.db, sqlite:////abs.db or a *.db path")
    parser.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="HTTP port; 0 picks a free one (default 8000)")
    parser.add_argument("--allow-writes", action="store_true", help="allow INSERT/UPDATE/DDL (default: read-only)")
    parser.add_argument("--statement-timeout", type=float, default=30.0, help="seconds per statement (default 30)")
    parser.add_argument("--max-rows", type=int, default=DEFAULT_MAX_ROWS, help="row limit per query (default 500)")
    parser.add_argument("--schema", default="public", help="default PostgreSQL schema (default public)")
    parser.add_argument("--log-level", default="WARNING", help="stderr log level (default WARNING)")
    args = parser.parse_args(argv)
    args.dsn = args.dsn or next((environ[name] for name in DSN_ENV_VARS if environ.get(name)), None)
    if not args.dsn:
        parser.error(f"no database: pass --dsn or set {' or '.join(DSN_ENV_VARS)}")
    if args.statement_timeout <= 0 or args.max_rows < 1:
        parser.error("--statement-timeout and --max-rows must be positive")
    return args


def database_from_args(args: argparse.Namespace) -> Database:
    """Pick the backend from the DSN scheme.

    Raises:
        ValueError: the DSN is neither PostgreSQL nor SQLite, or a read-only SQLite file does not exist.
    """
    dsn: str = args.dsn
    if dsn.startswith(("postgresql://", "postgres://")):
        return AsyncpgDatabase(
            dsn, schema=args.schema, allow_writes=args.allow_writes, statement_timeout=args.statement_timeout
        )
    path = sqlite_path(dsn)
    if path != ":memory:" and not args.allow_writes and not Path(path).is_file():
        raise ValueError(f"SQLite database {path!r} does not exist (it is only created with --allow-writes)")
    return SqliteDatabase(path, allow_writes=args.allow_writes, statement_timeout=args.statement_timeout)


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
    except ValueError as exc:
        sys.exit(f"error: {exc}")
    server = build_server(db, max_rows=args.max_rows)
    if args.transport == "http":
        anyio.run(serve_http, server, args.host, args.port)
    else:
        anyio.run(serve_stdio, server)


if __name__ == "__main__":
    main()
