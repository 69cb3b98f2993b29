"""Assembles the full server: the gateway app plus the layers that plug into its lifespan."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from hub.app import Extension, create_app
from hub.config import Config
from hub.mcp.http import mcp_extension, mcp_routes


def build_app(config: Config) -> Starlette:
    """The app `toolhub serve` runs."""
    extensions: list[Extension] = []
    routes: list[BaseRoute] = []
    extensions.append(mcp_extension())  # MCP hub: upstream sessions, /mcp, /mcp/<server>, /sse, /mcp/tools/*
    routes += mcp_routes()
    return create_app(config, extensions=extensions, routes=routes)
