"""Subcommands that other layers add to `toolhub` (each a function taking argparse's subparsers)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

REGISTRARS: list[Registrar] = []


def _keys(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from hub.accounts.keys_cli import register

    register(sub)


REGISTRARS.append(_keys)


def _mcp(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from hub.mcp.commands import register

    register(sub)


REGISTRARS.append(_mcp)  # toolhub tools, toolhub stdio
