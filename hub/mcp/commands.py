"""The hub's `toolhub` subcommands: `tools` (print the catalog of a config) and `stdio` (serve it on stdio)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import NoReturn

import anyio

from hub.config import config_path, load_config

CONFIG_HELP = "YAML config (default: $TOOLHUB_CONFIG or configs/config.example.yaml)"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `toolhub tools` and `toolhub stdio`."""
    p = sub.add_parser("tools", help="connect to the configured MCP servers, print their tools, exit")
    p.add_argument("--config", "-c", help=CONFIG_HELP)
    p.add_argument("--timeout", type=float, default=None, help="seconds to wait for servers (default: connect_timeout)")
    p.set_defaults(func=_tools)

    p = sub.add_parser("stdio", help="serve the MCP hub on stdin/stdout (for desktop clients that launch a command)")
    p.add_argument("--config", "-c", help=CONFIG_HELP)
    p.add_argument(
        "--separator",
        default=None,
        help="between server prefix and tool name (default: general_settings.mcp_tool_separator, else __)",
    )
    p.add_argument(
        "--http-log-level",
        default="warning",
        choices=["debug", "info", "warning", "error"],
        help="level of the HTTP client's log (one INFO line per upstream request; default: warning)",
    )
    p.set_defaults(func=_stdio)


def _tools(args: argparse.Namespace) -> int:
    from hub.mcp.stdio import print_catalog

    config = load_config(config_path(args.config), serving=False)
    return anyio.run(lambda: print_catalog(config, limit=args.timeout))


def _stdio(args: argparse.Namespace) -> int:
    from hub.mcp.stdio import serve_stdio

    logging.getLogger("httpx2").setLevel(args.http_log_level.upper())
    config = load_config(config_path(args.config), serving=False)
    status = anyio.run(lambda: serve_stdio(config, separator=args.separator))
    _exit_now(status)


def _exit_now(status: int) -> NoReturn:
    """Exit without finalizing the interpreter: every upstream is stopped and the wire restored by now, and tearing
    down the imported modules took 0.3-1 s on a loaded 2-core machine, out of the 2 s an MCP client waits for us."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
