"""Task pass-through on the hub's other transports, driven with raw JSON-RPC: `toolhub stdio` (a real child process)
and `/sse`. The tasks capability is advertised, and a task created on server-everything is polled and collected under
the hub's task id."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import mcp_types as types
import orjson
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.mcp.conftest import MASTER_KEY, everything_stdio, hub_app, requires_everything, running, text_of
from tests.mcp.stdio_peer import StdioPeer, stdio_peer, write_config

TOOL = "ev__simulate-research-query"


def listed(peer: StdioPeer) -> dict[str, Any]:
    """The tools once server-everything's are there (`toolhub stdio` answers before its upstreams are up)."""
    for _ in range(600):  # 60 s at most
        tools = {t["name"]: t for t in peer.answer(peer.request("tools/list"))["result"]["tools"]}
        if TOOL in tools:
            return tools
        time.sleep(0.1)
    raise AssertionError(f"{TOOL} was never listed")


def test_a_task_runs_through_toolhub_stdio(tmp_path: Path) -> None:
    requires_everything()
    with stdio_peer(write_config(tmp_path, {"ev": everything_stdio()})) as peer:
        capabilities = peer.handshake()["result"]["capabilities"]
        tools = listed(peer)
        call = {"name": TOOL, "arguments": {"topic": "tides"}, "task": {"ttl": 60000}}
        created = peer.answer(peer.request("tools/call", call))["result"]
        task_id = created["task"]["taskId"]
        result = peer.answer(peer.request("tasks/result", {"taskId": task_id}))["result"]
        done = peer.answer(peer.request("tasks/get", {"taskId": task_id}))["result"]
        unknown = peer.answer(peer.request("tasks/get", {"taskId": "nope"}))
    assert capabilities["tasks"]["requests"] == {"tools": {"call": {}}}
    assert tools[TOOL]["execution"] == {"taskSupport": "optional"}
    assert "# Research Report: tides" in result["content"][0]["text"]
    assert result["_meta"]["io.modelcontextprotocol/related-task"] == {"taskId": task_id}
    assert done["taskId"] == task_id and done["status"] == "completed"
    assert unknown["error"]["code"] == -32602


@pytest.mark.anyio
async def test_a_task_runs_through_sse() -> None:
    requires_everything()
    headers = {"Authorization": f"Bearer {MASTER_KEY}"}
    with running(hub_app({"ev": everything_stdio()})) as base:
        async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(10, read=60)) as http:
            async with http.stream("GET", f"{base}/sse") as stream:
                events = _data(stream.aiter_lines())
                endpoint = f"{base}{await anext(events)}"
                ids = iter(range(1, 100))

                async def ask(method: str, params: dict[str, Any]) -> dict[str, Any]:
                    request_id = next(ids)
                    body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
                    (await http.post(endpoint, json=body)).raise_for_status()
                    async for line in events:
                        message = orjson.loads(line)
                        if message.get("id") == request_id and "method" not in message:
                            return message
                    raise AssertionError("the event stream ended")

                init = await ask("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                                "clientInfo": {"name": "t", "version": "1"}})  # fmt: skip
                note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
                (await http.post(endpoint, json=note)).raise_for_status()
                call = {"name": TOOL, "arguments": {"topic": "tides"}, "task": {}}
                created = (await ask("tools/call", call))["result"]
                task_id = created["task"]["taskId"]
                result = (await ask("tasks/result", {"taskId": task_id}))["result"]
                listed = (await ask("tasks/list", {}))["result"]
    assert init["result"]["capabilities"]["tasks"]["requests"] == {"tools": {"call": {}}}
    assert "# Research Report: tides" in result["content"][0]["text"]
    assert [t["taskId"] for t in listed["tasks"]] == [task_id]


async def _data(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    async for line in lines:
        if line.startswith("data:"):
            yield line[5:].strip()


@pytest.mark.anyio
async def test_a_2026_era_client_gets_no_tasks_and_its_task_params_are_ignored() -> None:
    requires_everything()
    headers = {"Authorization": f"Bearer {MASTER_KEY}"}
    with running(hub_app({"ev": everything_stdio()})) as base:
        async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(10, read=60)) as http:
            async with Client(streamable_http_client(f"{base}/mcp", http_client=http), mode="2026-07-28") as client:
                version, capabilities = client.protocol_version, client.server_capabilities
                params = types.CallToolRequestParams(name=TOOL, arguments={"topic": "tides"},
                                                     task=types.TaskMetadata(ttl=60000))  # fmt: skip
                answer = await client.session.send_request(types.CallToolRequest(params=params), types.CallToolResult)
    assert version == "2026-07-28"
    assert capabilities is None or capabilities.tasks is None
    assert "# Research Report: tides" in text_of(answer)
