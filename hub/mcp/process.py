"""Upstream server processes: each in a process group of its own, stopped as a whole group within `STOP_BUDGET`.

The spec's shutdown sequence (close stdin, wait, SIGTERM, wait, SIGKILL) is applied to the process group, and the
group is signalled even when its leader exits by itself: `sh -c "sleep 3602 & exec server"` leaves the sleep behind
in the group when the server exits. The waits are short enough for the whole stop to end within `STOP_BUDGET`
seconds, inside the 2 s an MCP client gives `toolhub stdio` before it kills it (mcp.md "Clients and eras").

Every group not yet stopped is listed, so that an exit path that cannot wait (the last step of `toolhub stdio`) can
still kill them all at once (`kill_all`).

A group counts as gone when only zombies are left in it and the event loop has seen its leader exit. An orphaned
descendant is reaped by PID 1, and a PID 1 that does not reap (a container without `--init`) would otherwise hold every
stop for its whole budget. Linux has no call that lists a group's members, so they are found by scanning /proc (6.5 ms
with 134 processes): in a worker thread, once, and again only when every member found has died (one may have forked
another), never while the leader is unreaped (the group counts as there anyway). The polls in between read only those
members' `/proc/<pid>/stat`. A scan still running when its look's time is up is abandoned, so a busy thread pool or a
slow /proc cannot hold a stop beyond `STOP_BUDGET`.

The leader is different: it is the hub's own child, reaped by the event loop's child watcher, and it reads as a zombie
as soon as its main thread exits, while its other threads may still run (node's exit passes through that). A stop that
returned then left a `Popen` whose returncode the loop never set once it ended; collected later, it warned "subprocess
N is still running" (and its transport's close had polled it, racing the watcher for the exit status).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TextIO

import anyio
from anyio.abc import Process

logger = logging.getLogger("toolhub.mcp")

EXIT_GRACE = 0.4
"""Seconds a server gets to exit after its stdin is closed, before its group is sent SIGTERM."""
TERM_GRACE = 0.6
"""Seconds the group gets after SIGTERM, before SIGKILL."""
REAP_WAIT = 0.2
"""Seconds for the event loop to see a killed leader die."""
FIRST_LOOK = 0.1
"""Seconds for the look at whether the group is still there once the leader had its `EXIT_GRACE`; a look that takes
longer (a busy thread pool, a slow /proc) counts as "still there": the group is sent SIGTERM."""
STOP_BUDGET = 1.5
"""The longest a stop can take: `EXIT_GRACE + FIRST_LOOK + TERM_GRACE + REAP_WAIT`. Each look at the group is
bounded, and a /proc scan still running when its bound ends is abandoned."""
_POLL = 0.01
_PROC = Path("/proc")

_live: dict[int, Process] = {}
"""Process groups started and not yet stopped, by group id (the leader's pid)."""


async def spawn(command: str, args: list[str], env: dict[str, str], errlog: TextIO, cwd: str | Path | None) -> Process:
    """Start a server as the leader of a new session and process group, with piped stdin and stdout.

    Raises:
        OSError: the command cannot be started.
    """
    # Shielded: a cancel between the fork and the return would lose track of the group.
    process = await _shielded(anyio.open_process([command, *args], env=env, stderr=errlog, cwd=cwd,
                                                 start_new_session=True))  # fmt: skip
    _live[process.pid] = process
    return process


async def _shielded(opening: Awaitable[Process]) -> Process:
    with anyio.CancelScope(shield=True):
        return await opening
    raise AssertionError("unreachable: a shielded scope is never cancelled")


async def stop(process: Process) -> None:
    """Close stdin, give the leader `EXIT_GRACE`, then SIGTERM and after `TERM_GRACE` SIGKILL what is left of its
    group; returns once the group is gone or the budget is spent."""
    pgid = process.pid
    try:
        await _close(process.stdin)
        await _poll(lambda: process.returncode is not None, EXIT_GRACE)
        group = Group(process)
        if await group.alive_within(FIRST_LOOK):
            _signal(pgid, signal.SIGTERM)
            if not await group.gone_within(TERM_GRACE):
                _signal(pgid, signal.SIGKILL)
                if not await group.gone_within(REAP_WAIT):  # a killed member takes a moment to die on a busy machine
                    logger.warning("MCP server process group %d survived SIGKILL; abandoning it", pgid)
    finally:
        _live.pop(pgid, None)
        await _close(process.stdout)
        _close_transport(process)


def kill_all() -> int:
    """SIGKILL every process group not yet stopped, without waiting; the number of groups signalled."""
    groups = list(_live)
    for pgid in groups:
        _signal(pgid, signal.SIGKILL)
    _live.clear()
    return len(groups)


def live_groups() -> list[int]:
    return list(_live)


class Group:
    """A process group, its leader, and the members of it last found in /proc."""

    def __init__(self, leader: Process) -> None:
        self.leader = leader
        self.pgid = leader.pid
        self.members: list[int] = []

    async def alive(self) -> bool:
        """Whether a process of the group is alive, or its leader's exit is not seen by the event loop yet.

        Zombies do not count where /proc tells them apart, except the leader: it reads as one as soon as its main
        thread exits, while its other threads may still run, and until the loop sees it exit its `Popen` is unreaped.
        """
        return self.leader.returncode is None or await self._members_alive()

    async def _members_alive(self) -> bool:
        try:
            os.killpg(self.pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # EPERM never proves the group is gone
        if sys.platform != "linux" or any(_living(pid, self.pgid) for pid in self.members):
            return True
        # abandoned when cancelled: a stop must not outlast its budget waiting for a thread
        self.members = await anyio.to_thread.run_sync(_living_members, self.pgid, abandon_on_cancel=True)
        return bool(self.members)

    async def alive_within(self, timeout: float) -> bool:
        """`alive()`, looked at once within `timeout` seconds; a look that takes longer counts as alive."""
        with anyio.move_on_after(timeout):
            return await self.alive()
        return True

    async def gone_within(self, timeout: float) -> bool:
        with anyio.move_on_after(timeout):
            while await self.alive():  # noqa: ASYNC110 - no event tells of a process group's end
                await anyio.sleep(_POLL)
            return True
        return False


def _living_members(pgid: int) -> list[int]:
    """The pids of the group's processes that are not zombies (a scan of /proc); [pgid] when /proc cannot be read."""
    try:
        entries = list(_PROC.iterdir())
    except OSError:
        return [pgid]
    return [int(entry.name) for entry in entries if entry.name.isdigit() and _living(int(entry.name), pgid)]


def _living(pid: int, pgid: int) -> bool:
    """Whether `pid` is a process of the group that is not a zombie (`/proc/<pid>/stat`)."""
    try:
        fields = (_PROC / str(pid) / "stat").read_text().rpartition(")")[2].split()
    except OSError:
        return False
    return len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X")


def _signal(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


async def _poll(done: Callable[[], bool], timeout: float) -> bool:
    """Whether `done()` became true within `timeout` seconds. Polled: there is no event for a process group's end,
    and a leader's `wait()` also waits for the pipes a descendant may still hold."""
    with anyio.move_on_after(timeout):
        while not done():  # noqa: ASYNC110
            await anyio.sleep(_POLL)
        return True
    return False


async def _close(stream: object) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        with contextlib.suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            await close()


def _close_transport(process: Process) -> None:
    """Close the asyncio subprocess transport: a descendant holding a pipe keeps it open (and warning) otherwise."""
    transport = getattr(getattr(process, "_process", None), "_transport", None)
    close = getattr(transport, "close", None)
    if callable(close):
        with contextlib.suppress(PermissionError):
            close()
