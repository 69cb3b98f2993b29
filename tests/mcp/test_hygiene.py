"""No upstream process outlives the hub, on every exit path of `toolhub stdio` and `toolhub serve` (issue 15 item 5).

Each config has an upstream started through a shell that forks (`sh -c "sleep 3602.<marker> & exec server"`) and,
where it matters, a hung one (never answers, ignores SIGTERM and its stdin). Survivors are found by the marker in
their argv once the hub has exited.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from tests.mcp.conftest import Notifications, text_of
from tests.mcp.stdio_peer import (
    forking_server,
    hung_server,
    new_marker,
    stdio_peer,
    survivors,
    wait_for,
    write_config,
)
from tests.support.servers import ROOT, toolhub_process, wait_until_serving

pytestmark = pytest.mark.anyio
EXIT_WAIT = 10.0
"""A hang guard for the hub's own exit (the bound the fix keeps is 1.5 s; `bench/` style numbers are in the report)."""


def upstreams(marker: str) -> dict[str, object]:
    """A tool server and a silent one (it exits as soon as its stdin closes), each started by a shell that forks,
    and a hung server."""
    return {
        "tool": forking_server(marker),
        "quits": forking_server(marker, "hang.py", connect_timeout=60),
        "hung": hung_server(marker, connect_timeout=60),
    }


def all_started(marker: str) -> bool:
    """Both shells' sleeps, the tool server, the silent server and the hung server are all running."""
    found = survivors(marker)
    return len(found) == 5 and not any(cmd.startswith("sh ") for cmd in found)


@pytest.mark.parametrize("how", ["stdin closed", "SIGTERM", "SIGINT", "SIGHUP"])
def test_toolhub_stdio_stops_every_upstream_process_group(tmp_path: Path, how: str) -> None:
    marker = new_marker()
    with stdio_peer(write_config(tmp_path, upstreams(marker))) as peer:
        peer.handshake()
        wait_for(lambda: all_started(marker), what="the upstream processes")
        if how == "stdin closed":
            peer.close_stdin()
        else:
            peer.proc.send_signal(getattr(signal, how))  # stdin stays open: the client is still there
        code = peer.proc.wait(EXIT_WAIT)
    assert survivors(marker) == []
    assert code == (0 if how == "stdin closed" else 128 + getattr(signal, how))


async def test_a_hung_upstream_is_stopped_before_the_client_gives_up_on_the_hub(tmp_path: Path) -> None:
    """The mcp client closes the hub's stdin, waits 2 s, then kills the hub's own process group: by then every
    upstream must be gone, or it is orphaned."""
    marker = new_marker()
    config = write_config(tmp_path, upstreams(marker))
    params = StdioServerParameters(command=sys.executable, args=["-m", "hub", "stdio", "--config", str(config)],
                                   cwd=str(ROOT))  # fmt: skip
    notes = Notifications()
    async with Client(params, mode="legacy", message_handler=notes) as client:
        wait_for(lambda: all_started(marker), what="the upstream processes")
        while "tool__echo" not in {t.name for t in (await client.list_tools()).tools}:
            await notes.next()  # bounded: at most 20 s
        result = await client.call_tool("tool__echo", {"text": "hi"})
    assert text_of(result) == "echo: hi"
    assert survivors(marker) == []


def test_sigterm_to_toolhub_serve_stops_forked_and_hung_upstreams(tmp_path: Path) -> None:
    marker = new_marker()
    path = write_config(tmp_path, upstreams(marker))
    with toolhub_process(path) as (url, proc):
        wait_until_serving(f"{url}/health/liveness", proc)
        wait_for(lambda: all_started(marker), what="the upstream processes")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(EXIT_WAIT + 10) == -signal.SIGTERM  # uvicorn shuts down, then re-raises the signal
    assert survivors(marker) == []
