"""No upstream process outlives the hub, on every exit path of `toolhub stdio` and `toolhub serve` (issue 15 item 5).

Each config has an upstream started through a shell that forks (`sh -c "sleep 3602.<marker> & exec server"`) and,
where it matters, a hung one (never answers, ignores SIGTERM and its stdin). Survivors are found by the marker in
their argv once the hub has exited.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

from hub.mcp import process as processes
from tests.mcp.conftest import Notifications, text_of
from tests.mcp.stdio_peer import (
    HUNG,
    forking_server,
    hung_server,
    new_marker,
    stdio_peer,
    survivors,
    wait_for,
    write_config,
)
from tests.support.servers import ROOT, stop, toolhub_process, wait_until_serving

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
    wait_for(lambda: survivors(marker) == [], what="every upstream process killed")  # dying takes moments, hung never
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
    wait_for(lambda: survivors(marker) == [], what="every upstream process killed")  # dying takes moments, hung never


def test_sigterm_to_toolhub_serve_stops_forked_and_hung_upstreams(tmp_path: Path) -> None:
    marker = new_marker()
    path = write_config(tmp_path, upstreams(marker))
    with toolhub_process(path) as (url, proc):
        wait_until_serving(f"{url}/health/liveness", proc)
        wait_for(lambda: all_started(marker), what="the upstream processes")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(EXIT_WAIT + 10) == -signal.SIGTERM  # uvicorn shuts down, then re-raises the signal
    wait_for(lambda: survivors(marker) == [], what="every upstream process killed")  # dying takes moments, hung never


async def test_stop_ends_a_group_whose_leader_left_a_child_that_ignores_sigterm(tmp_path: Path) -> None:
    marker = new_marker()
    script = f"{sys.executable} -c '{HUNG}' hung-{marker} & exec cat"  # cat exits as soon as its stdin closes
    process = await processes.spawn("sh", ["-c", script], dict(os.environ), sys.stderr, tmp_path)
    wait_for(lambda: len(survivors(marker)) == 1, what="the hung child")
    assert process.pid in processes.live_groups()
    await processes.stop(process)
    assert process.returncode == 0
    wait_for(lambda: survivors(marker) == [], what="every upstream process killed")  # dying takes moments, hung never
    assert process.pid not in processes.live_groups()


async def test_kill_all_kills_every_group_not_yet_stopped(tmp_path: Path) -> None:
    marker = new_marker()
    started = [await processes.spawn(sys.executable, ["-c", HUNG, f"hung-{marker}"], dict(os.environ), sys.stderr,
                                     tmp_path) for _ in range(2)]  # fmt: skip
    wait_for(lambda: len(survivors(marker)) == 2, what="two hung servers")
    assert processes.kill_all() >= 2
    with anyio.fail_after(30):
        while not all(p.returncode == -signal.SIGKILL for p in started):  # noqa: ASYNC110 - set by the event loop
            await anyio.sleep(0.02)
    wait_for(lambda: survivors(marker) == [], what="every upstream process killed")  # dying takes moments, hung never
    for process in started:
        await processes.stop(process)  # closes the pipes; the group is gone already


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_toolhub_tools_stops_every_upstream(tmp_path: Path, signum: int) -> None:
    marker = new_marker()
    path = write_config(tmp_path, upstreams(marker))
    proc = subprocess.Popen([sys.executable, "-m", "hub", "tools", "--config", str(path), "--timeout", "120"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for(lambda: all_started(marker), what="the upstream processes")
        proc.send_signal(signum)  # while it waits for the hung server
        code = proc.wait(EXIT_WAIT)
    finally:
        stop(proc)
    wait_for(lambda: survivors(marker) == [], what="every upstream process killed")  # dying takes moments, hung never
    assert code == 128 + signum
