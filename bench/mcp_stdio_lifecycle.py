"""`toolhub stdio` with a hung upstream: how fast `initialize` is answered, and how long each exit path takes.

    python bench/mcp_stdio_lifecycle.py [--runs 5]

Config: tool_server.py and a silent server, each started by `sh -c "sleep 3602.<marker> & exec server"`, and a hung
server (never answers, ignores SIGTERM and its stdin). For each exit path, once every upstream process runs, it sends
`initialize` (timed to the answer), then ends the session (closes stdin, or sends the signal; "slow call" closes stdin
during a call that never ends) and times the hub's exit. Survivors are processes with the run's marker in their argv
after the exit (zombies left to a PID 1 that does not reap are not counted). The budget is 1.5 s per exit
(`hub.mcp.process.STOP_BUDGET`), inside the 2 s an MCP client waits. Only child processes and pipes: no network.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.mcp.stdio_peer import (  # noqa: E402
    forking_server,
    hung_server,
    new_marker,
    stdio_peer,
    survivors,
    wait_for,
    write_config,
)

PATHS = ("stdin closed", "SIGTERM", "SIGINT", "slow call")


def one_run(how: str, folder: Path) -> tuple[float, float, int]:
    """(initialize seconds, exit seconds, survivors) of one session."""
    marker = new_marker()
    servers = {"tool": forking_server(marker), "quits": forking_server(marker, "hang.py", connect_timeout=60),
               "hung": hung_server(marker, connect_timeout=60)}  # fmt: skip
    with stdio_peer(write_config(folder, servers)) as peer:
        wait_for(lambda: len(survivors(marker)) == 5, what="the upstream processes")
        started = time.perf_counter()
        peer.handshake()
        initialize = time.perf_counter() - started
        if how == "slow call":
            peer.request("tools/call", {"name": "tool__slow", "arguments": {}})
            time.sleep(0.5)
        started = time.perf_counter()
        if how in ("stdin closed", "slow call"):
            peer.close_stdin()
        else:
            peer.proc.send_signal(getattr(signal, how))
        peer.proc.wait(30)
        exited = time.perf_counter() - started
    return initialize, exited, len(survivors(marker))


def main() -> None:
    parser = argparse.ArgumentParser(description="toolhub stdio: initialize latency and exit time per exit path")
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    print(f"load average {os.getloadavg()[0]:.1f}, {runs} runs per exit path")
    print(f"{'exit path':14} {'initialize p50':>15} {'exit p50':>10} {'exit max':>10} {'survivors':>10}")
    with tempfile.TemporaryDirectory() as folder:
        for how in PATHS:
            rows = [one_run(how, Path(folder)) for _ in range(runs)]
            init = statistics.median(r[0] for r in rows) * 1000
            exit_p50 = statistics.median(r[1] for r in rows) * 1000
            exit_max = max(r[1] for r in rows) * 1000
            print(f"{how:14} {init:12.1f} ms {exit_p50:7.0f} ms {exit_max:7.0f} ms {sum(r[2] for r in rows):10d}")


if __name__ == "__main__":
    main()
