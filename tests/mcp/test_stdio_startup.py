"""`toolhub stdio` answers `initialize` at once and announces upstreams as they come up (issue 15 item 6); its
stderr has no HTTP client line per upstream request (item 7)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.subscriptions import ToolsListChanged

from tests.mcp.conftest import MASTER_KEY, hub_app, running, tool_server
from tests.mcp.stdio_peer import gated_server, hung_server, new_marker, stdio_peer, survivors, wait_for, write_config
from tests.support.servers import ROOT

INITIALIZE_GUARD = 2.5
"""A hang guard, not a speed target: before the fix `initialize` waited 5 s for a hung upstream. The latency itself
(a few ms) is measured by the report's command."""


def tool_names(message: dict[str, object]) -> set[str]:
    result = message["result"]
    assert isinstance(result, dict)
    return {tool["name"] for tool in result["tools"]}


def test_initialize_is_answered_at_once_with_a_hung_upstream(tmp_path: Path) -> None:
    marker = new_marker()
    config = write_config(tmp_path, {"hung": hung_server(marker, connect_timeout=60), "tool": tool_server()})
    with stdio_peer(config) as peer:
        wait_for(lambda: len(survivors(f"hung-{marker}")) == 1, what="the hub to start its upstreams")
        started = time.perf_counter()
        result = peer.handshake(timeout=INITIALIZE_GUARD)
        latency = time.perf_counter() - started
    print(f"initialize answered in {latency * 1000:.1f} ms with a hung upstream")
    assert result["result"]["serverInfo"]["name"] == "toolhub"


def test_an_upstream_that_comes_up_later_is_announced_with_list_changed(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    config = write_config(tmp_path, {"late": gated_server(new_marker(), gate)})
    with stdio_peer(config) as peer:
        peer.handshake()
        before = tool_names(peer.answer(peer.request("tools/list")))
        gate.touch()
        announced = [peer.receive(30)]
        while announced[-1].get("method") != "notifications/tools/list_changed" and len(announced) < 3:
            announced.append(peer.receive(30))  # resources and prompts may come first
        after = tool_names(peer.answer(peer.request("tools/list")))
    assert before == set()
    assert announced[-1] == {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}
    assert "late__echo" in after


@pytest.mark.anyio
async def test_a_2026_era_client_hears_of_a_late_upstream_on_its_listen_stream(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    config = write_config(tmp_path, {"late": gated_server(new_marker(), gate)})
    params = StdioServerParameters(command=sys.executable, args=["-m", "hub", "stdio", "--config", str(config)],
                                   cwd=str(ROOT))  # fmt: skip
    async with Client(params) as client:  # the SDK's default: the 2026-07-28 era when the server offers it
        version = client.session.protocol_version
        before = [t.name for t in (await client.list_tools()).tools]
        async with client.listen(tools_list_changed=True) as events:
            gate.touch()
            with anyio.fail_after(30):
                event = await anext(aiter(events))
        after = {t.name for t in (await client.list_tools()).tools}
    assert version == "2026-07-28"
    assert before == []
    assert isinstance(event, ToolsListChanged)
    assert "late__echo" in after


@pytest.mark.parametrize(("args", "logged"), [((), False), (("--http-log-level", "info"), True)])
def test_http_client_lines_stay_out_of_stderr_unless_asked_for(tmp_path: Path, args: tuple[str, ...],
                                                                logged: bool) -> None:  # fmt: skip
    with running(hub_app({"tool": tool_server()})) as url:
        upstream = {"url": f"{url}/mcp", "headers": {"Authorization": f"Bearer {MASTER_KEY}"}}
        with stdio_peer(write_config(tmp_path, {"remote": upstream}), *args) as peer:
            peer.handshake()
            called = peer.answer(peer.request("tools/call", {"name": "remote__tool__echo", "arguments": {"text": "x"}}))
            peer.close_stdin()
            peer.proc.wait(10)
            stderr = peer.stderr()
    assert called["result"]["content"] == [{"type": "text", "text": "echo: x"}]
    assert ("INFO httpx2: HTTP Request: POST" in stderr) is logged


def test_requests_piped_from_a_file_are_all_answered_before_the_hub_exits(tmp_path: Path) -> None:
    hello = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    lines = [{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello},
             {"jsonrpc": "2.0", "method": "notifications/initialized"},
             {"jsonrpc": "2.0", "id": 2, "method": "ping"},
             {"jsonrpc": "2.0", "id": 3, "method": "tools/list"}]  # fmt: skip
    requests = tmp_path / "requests.jsonl"
    requests.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with requests.open("rb") as stdin:
        done = subprocess.run([sys.executable, "-m", "hub", "stdio", "--config", str(write_config(tmp_path, {}))],
                              stdin=stdin, capture_output=True, cwd=ROOT, timeout=60)  # fmt: skip
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert [answer["id"] for answer in answers] == [1, 2, 3]  # the last one was lost at end of file
    assert answers[2]["result"] == {"tools": []}
    assert done.returncode == 0
