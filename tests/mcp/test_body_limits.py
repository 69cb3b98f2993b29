"""`/mcp`, `/mcp/<server>` and `/sse` take request bodies up to `general_settings.max_request_size_mb` (16 MiB by
default), as REST and `/v1` do, not the MCP SDK's own 4 MiB; the arguments in them are then held to their server's
`max_message_bytes` (8 MiB by default)."""

from __future__ import annotations

import json

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.sse import sse_client

from tests.mcp.conftest import MASTER_KEY, hub_app, running, text_of, tool_server
from tests.mcp.test_big_numbers import result_of
from tests.mcp.test_lean import VERSION, headers, open_session

AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}
MIB = 1024 * 1024


def padded_call(tool: str, size: int) -> bytes:
    params = {"name": tool, "arguments": {"pad": "x" * size}}
    return json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params}).encode()


def padded_initialize(size: int) -> bytes:
    capabilities = {"experimental": {"pad": {"x": "x" * size}}}
    params = {"protocolVersion": VERSION, "capabilities": capabilities, "clientInfo": {"name": "t", "version": "1"}}
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}).encode()


def posts(base: str, size: int) -> list[httpx2.Response]:
    """An `initialize` (the SDK's path) and, in an open session, a call on `/mcp` and `/mcp/tool` (the short way)."""
    answers = [httpx2.post(f"{base}/mcp", headers=headers(), content=padded_initialize(size), timeout=60)]
    for path, tool in (("/mcp", "tool__pid"), ("/mcp/tool", "pid")):
        session = open_session(f"{base}{path}", {})
        answers.append(httpx2.post(f"{base}{path}", headers=headers(session), content=padded_call(tool, size),
                                   timeout=60))  # fmt: skip
    return answers


def test_bodies_over_the_sdk_default_but_within_max_request_size_mb_are_taken() -> None:
    with running(hub_app({"tool": tool_server()})) as base:
        answers = posts(base, 5 * MIB)
    assert [a.status_code for a in answers] == [200, 200, 200], [a.text[:200] for a in answers]
    for answer in answers[1:]:
        assert not result_of(answer).get("isError"), answer.text[:300]


def test_bodies_over_max_request_size_mb_get_413() -> None:
    with running(hub_app({"tool": tool_server()}, max_request_size_mb=1)) as base:
        answers = posts(base, MIB + MIB // 2)
        rest = httpx2.post(
            f"{base}/mcp/tools/call",
            headers=AUTH,
            json={"name": "tool__pid", "arguments": {"pad": "x" * (MIB + MIB // 2)}},
        )
    assert [a.status_code for a in answers] == [413, 413, 413]
    assert rest.status_code == 413


@pytest.mark.anyio
async def test_sse_takes_a_message_over_the_sdk_default() -> None:
    with running(hub_app({"tool": tool_server()})) as base:
        with anyio.fail_after(30):
            async with Client(sse_client(f"{base}/sse", headers=AUTH), mode="legacy") as client:
                result = await client.call_tool("tool__pid", {"pad": "y" * (5 * MIB)})
    assert not result.is_error and text_of(result).isdigit(), text_of(result)
