"""Helpers for the MCP hub tests: upstream commands, the hub on a loopback port, MCP clients, child-process checks."""

from __future__ import annotations

import contextlib
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.session import IncomingMessage
from mcp.client.streamable_http import streamable_http_client
from mcp.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from hub.accounts.auth import MasterKeyAuth, Principal
from hub.app import Extension, create_app
from hub.config import parse_config
from hub.errors import AuthenticationError
from hub.mcp.http import mcp_extension, mcp_routes
from hub.mcp.hub import McpHub
from hub.server import build_app
from hub.state import HubState
from tests.support.peers import require_files
from tests.support.servers import ROOT, serve_app

MASTER_KEY = "sk-mcp-test-master"
SERVERS = ROOT / "tests" / "mcp" / "servers"
NODE_MODULES = ROOT / "tests" / "node" / "node_modules"
EVERYTHING = NODE_MODULES / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
BIN = Path(sys.executable).parent


def requires_everything() -> None:
    require_files(EVERYTHING, hint="server-everything not installed: run `npm ci --prefix tests/node`")


def tool_server(marker: str = "", **options: Any) -> dict[str, Any]:
    """Config of `tests/mcp/servers/tool_server.py` over stdio; `marker` is an argv word to find its process by."""
    return {"command": sys.executable, "args": [str(SERVERS / "tool_server.py"), marker or uuid.uuid4().hex], **options}


def script_server(name: str, *args: str, **options: Any) -> dict[str, Any]:
    return {"command": sys.executable, "args": [str(SERVERS / name), *args], **options}


def time_server() -> dict[str, Any]:
    return {"command": str(BIN / "mcp-server-time"), "args": ["--local-timezone", "UTC"]}


def everything_stdio() -> dict[str, Any]:
    return {"command": "node", "args": [str(EVERYTHING), "stdio"]}


def hub_app(servers: dict[str, Any], *, extra: list[Extension] | None = None, **general: Any) -> Starlette:
    """The hub as `toolhub serve` builds it, or with extra extensions (e.g. a test authenticator) after the hub's."""
    config = parse_config({"general_settings": {"master_key": MASTER_KEY, **general}, "mcp_servers": servers}, {})
    if extra is None:
        return build_app(config)
    return create_app(config, extensions=[mcp_extension(), *extra], routes=mcp_routes())


def hub_of(app: Starlette) -> McpHub:
    return app.state.hub.extras["mcp"]


def eventually(predicate: Callable[[], bool], timeout: float = 20, what: str = "condition") -> None:
    """Wait (bounded) for state owned by the server thread; the only way to observe it from the test thread."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


@contextlib.contextmanager
def running(app: Starlette, *, ready: bool = True) -> Iterator[str]:
    """Serve the hub on loopback; with `ready`, wait until every upstream had its first connection attempt."""
    with serve_app(app) as url:
        if ready:
            eventually(lambda: httpx2.get(f"{url}/health/readiness").status_code == 200, what="hub readiness")
        yield url


class Notifications:
    """Collects the notifications an MCP client receives; `wait_for` blocks until one matches."""

    def __init__(self) -> None:
        self.seen: list[IncomingMessage] = []
        self._changed = anyio.Event()

    async def __call__(self, message: IncomingMessage) -> None:
        self.seen.append(message)
        self._changed.set()
        self._changed = anyio.Event()

    async def next(self, kind: type[Any] = types.ToolListChangedNotification, limit: float = 20) -> None:
        start = len(self.seen)
        with anyio.fail_after(limit):
            while not any(isinstance(m, kind) for m in self.seen[start:]):
                await self._changed.wait()


@contextlib.asynccontextmanager
async def mcp_client(url: str, key: str | None = MASTER_KEY, **options: Any) -> AsyncIterator[Client]:
    """The official client over streamable HTTP, handshake era, with a bearer key."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(10, read=60)) as http:
        async with Client(streamable_http_client(url, http_client=http), mode="legacy", **options) as client:
            yield client


def children_matching(marker: str) -> list[int]:
    """Live processes (zombies included) whose command line contains `marker`."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if marker.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


def text_of(result: types.CallToolResult) -> str:
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))


class FakeKeys:
    """An authenticator for tests: bearer token -> `Principal`, as virtual keys would answer."""

    def __init__(self, keys: dict[str, Principal]) -> None:
        self.keys = keys

    async def authenticate(self, token: str | None) -> Principal:
        if token not in self.keys:
            raise AuthenticationError("Invalid API key.", code="invalid_api_key")
        return self.keys[token]


def keyed_hub_app(servers: dict[str, Any], keys: dict[str, Principal], **general: Any) -> Starlette:
    """The hub with the master key plus the given test keys."""

    @contextlib.asynccontextmanager
    async def with_keys(state: HubState) -> AsyncIterator[None]:
        state.auth = MasterKeyAuth(MASTER_KEY, FakeKeys(keys))
        yield

    return hub_app(servers, extra=[with_keys], **general)


def streamable_app(server: Server[Any], *, json_response: bool = False,
                   seen: Callable[[Scope], None] | None = None) -> Starlette:  # fmt: skip
    """`server` over streamable HTTP at `/mcp` (the SDK's session manager, JSON answers or event streams); `seen` is
    shown each request's scope before the manager serves it."""
    manager = StreamableHTTPSessionManager(app=server, json_response=json_response)

    class Endpoint:
        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if seen is not None:
                seen(scope)
            await manager.handle_request(scope, receive, send)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with manager.run():
            yield

    return Starlette(routes=[Route("/mcp", Endpoint())], lifespan=lifespan)
