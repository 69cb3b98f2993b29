"""The client for the conformance suite's client mode, with a Toolhub hub as the MCP client of the mock server.

`conformance client --command "python -m tests.conformance.hub_client"` starts a mock server per scenario and runs
the command with the mock's URL as the last argument (`MCP_CONFORMANCE_SCENARIO` names the scenario). This script
runs a hub in process with that URL as its streamable-HTTP upstream `mock`, then drives the hub's `/mcp` with the
official client: it lists tools and calls the ones the scenarios grade (`mock__add_numbers` {"a": 5, "b": 3},
`mock__test_reconnection`, `mock__test_client_elicitation*`), answering elicitation in its callback with the
requested schema's defaults. So what the mock grades is what the hub did as a client: its initialize, its
reconnection after the mock closes an SSE stream, and its relay of the mock's elicitation to the downstream client.

With `--direct` the same official client talks to the mock itself: the baseline the hub is held to.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio
import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.context import ClientRequestContext
from mcp.client.streamable_http import streamable_http_client

from hub.config import parse_config
from hub.server import build_app
from tests.support.servers import serve_app

UPSTREAM = "mock"
MASTER_KEY = "sk-conformance-client"
ARGUMENTS: dict[str, dict[str, Any]] = {"add_numbers": {"a": 5, "b": 3}}
"""Arguments of the scenario tools that take any; every other graded tool takes none."""
READ_TIMEOUT = 20.0
READY_TIMEOUT = 20.0


def loopback(url: str) -> str:
    """The mock's URL with `localhost` spelled 127.0.0.1 (the runner says localhost; traffic stays on IPv4 loopback)."""
    parts = urlsplit(url)
    if parts.hostname != "localhost":
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace("localhost", "127.0.0.1", 1)))


def graded(name: str) -> bool:
    """Whether a scenario grades the client on calling this (unprefixed) tool."""
    return name in ARGUMENTS or name == "test_reconnection" or name.startswith("test_client_elicitation")


async def accept_with_defaults(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
    """Accept every elicitation, filling each field the requested schema gives a default for (SEP-1034)."""
    schema: dict[str, Any] = getattr(params, "requested_schema", None) or {}
    properties: dict[str, Any] = schema.get("properties") or {}
    content = {name: spec["default"] for name, spec in properties.items() if "default" in spec}
    return types.ElicitResult(action="accept", content=content)


async def exercise(client: Client, prefix: str) -> None:
    """List tools and call every graded one (named `prefix` + its mock name), printing what came back."""
    listed = await client.list_tools()
    print("tools:", [tool.name for tool in listed.tools], flush=True)
    for tool in listed.tools:
        name = tool.name.removeprefix(prefix)
        if tool.name.startswith(prefix) and graded(name):
            result = await client.call_tool(tool.name, ARGUMENTS.get(name, {}))
            print(f"{tool.name}: {result.model_dump_json(exclude_none=True)}", flush=True)


async def drive_direct(url: str) -> None:
    """The official client against the mock itself."""
    async with Client(
        url, mode="legacy", elicitation_callback=accept_with_defaults, read_timeout_seconds=READ_TIMEOUT
    ) as client:
        await exercise(client, "")


async def drive_hub(hub_mcp_url: str) -> None:
    """The official client against the hub's `/mcp`, with the master key."""
    headers = {"Authorization": f"Bearer {MASTER_KEY}"}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(10, read=60)) as http:
        transport = streamable_http_client(hub_mcp_url, http_client=http)
        async with Client(
            transport, mode="legacy", elicitation_callback=accept_with_defaults, read_timeout_seconds=READ_TIMEOUT
        ) as client:
            await exercise(client, f"{UPSTREAM}__")


def wait_until_connected(base_url: str) -> None:
    """Wait (bounded) until the hub's strict readiness says its upstream is connected."""
    deadline = time.monotonic() + READY_TIMEOUT
    body = ""
    while time.monotonic() < deadline:
        response = httpx2.get(f"{base_url}/health/readiness?strict=true", timeout=5)
        if response.status_code == 200:
            return
        body = response.text
        time.sleep(0.05)
    raise SystemExit(f"the hub's upstream did not connect within {READY_TIMEOUT:g} s: {body}")


def through_hub(url: str) -> None:
    """Run a hub in process with `url` as its streamable-HTTP upstream and drive it from a downstream client."""
    config = parse_config(
        {
            "general_settings": {"master_key": MASTER_KEY},
            "mcp_servers": {UPSTREAM: {"transport": "http", "url": url}},
        },
        {},
    )
    with serve_app(build_app(config)) as base_url:
        wait_until_connected(base_url)
        anyio.run(drive_hub, f"{base_url}/mcp")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--direct", action="store_true", help="the official client against the mock, no hub")
    parser.add_argument("url", help="the mock server's URL (the runner appends it)")
    args = parser.parse_args(argv)
    url = loopback(args.url)
    if args.direct:
        anyio.run(drive_direct, url)
    else:
        through_hub(url)


if __name__ == "__main__":
    main(sys.argv[1:])
