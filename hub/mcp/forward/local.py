"""Where the workers of one `toolhub serve --workers N` listen, without Redis: one file per worker in a directory on
this machine that the supervisor creates, passes to its workers (`--worker-registry`) and removes at stop.

Each worker listens on a port of its own on 127.0.0.1 besides the shared socket (hub/scale/supervisor.py) and writes
`<replica id>` = `{"url": ..., "pid": ...}` there, whole (a temporary file renamed over it), so a reader never sees
half of it. A worker deletes its file when it stops; the supervisor deletes the file of a worker that died, and a
lookup ignores a file whose process is gone (the moment between a death and the supervisor noticing it). A file or
the directory removed while the workers run (systemd-tmpfiles or another /tmp cleaner, an operator) is written again
by its worker within `CHECK_SECONDS`. Reaching only this machine's loopback, these URLs never leave it: replicas on
other machines need Redis and `replica_url`.

The entries are not signed: the directory is the supervisor's `tempfile.mkdtemp` (mode 0700, this user's), so only
this user's processes can write there; a worker refuses a directory that others can write or that is not its user's
(a forward carries the client's `Authorization`).

The files are read and written with plain blocking calls: a few hundred bytes in a directory under the system's
temporary directory, a lookup only for a request whose session another worker holds.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path

import anyio

from hub.mcp.forward.registry import valid_replica_id

logger = logging.getLogger("toolhub.mcp")

CHECK_SECONDS = 5.0
"""How often a worker checks that its own file is still there, and writes it again (with the directory, private, if
that went too) when it is not: until then the other workers answer 404 for its sessions. A timer, not a lookup that
misses: that miss happens in another worker, never in the one whose file is gone. One `stat` of the directory and
one of the file per check; as often as a replica refreshes its Redis entry (hub/mcp/forward/registry.py)."""


class WorkerRegistry:
    """This worker's file in the workers' directory, and the lookup of the other workers'."""

    def __init__(self, directory: str | Path, replica_id: str, url: str, *, check_every: float = CHECK_SECONDS) -> None:
        self.directory = Path(directory)
        self.replica_id = replica_id
        self.url = url
        self.check_every = check_every
        self.usable = True
        """False while the directory is not private: nothing is registered or looked up there."""
        self._trouble: str | None = None
        """The problem last logged: a lasting one is logged once, not at every check."""

    def register(self) -> None:
        """Write this worker's file (its URL and pid)."""
        partial = self.directory / f".{self.replica_id}.{os.getpid()}.tmp"
        partial.write_text(json.dumps({"url": self.url, "pid": os.getpid()}))
        partial.replace(self.directory / self.replica_id)

    async def run(self) -> None:
        """Register, then every `check_every` seconds write the file again if it was removed, until cancelled."""
        self.keep()
        while True:
            await anyio.sleep(self.check_every)
            if self.keep():
                logger.warning("this worker's file in %s was removed: written again (the other workers forward "
                               "this worker's MCP sessions again)", self.directory)  # fmt: skip

    def keep(self) -> bool:
        """Make the directory if it is gone (as the supervisor does), check that it is private, and write this
        worker's file there if it is missing. True when the file was written."""
        try:
            with contextlib.suppress(FileExistsError):
                self.directory.mkdir(mode=0o700)
            self.usable = _private(self.directory)
            written = self.usable and not (self.directory / self.replica_id).exists()
            if written:
                self.register()
        except OSError as exc:
            self._report(f"could not advertise this worker's MCP URL in {self.directory} ({exc}): sessions opened "
                         f"here answer 404 on the other workers; retrying every {self.check_every:g} s")  # fmt: skip
            return False
        self._report(None if self.usable else f"the workers' directory {self.directory} is not private (mode 0700, "
                     "this user's): MCP sessions are not forwarded between workers")  # fmt: skip
        return written

    def _report(self, trouble: str | None) -> None:
        """Log `trouble` when it is not the one logged last, and the end of one."""
        if trouble is not None and trouble != self._trouble:
            logger.error("%s", trouble)
        elif trouble is None and self._trouble is not None:
            logger.warning("this worker's MCP URL is advertised in %s again", self.directory)
        self._trouble = trouble

    async def url_of(self, replica_id: str) -> str | None:
        """The URL worker `replica_id` advertised, or None (unknown, not a worker of this server, or dead)."""
        if not self.usable or not valid_replica_id(replica_id):
            return None
        try:
            entry = json.loads((self.directory / replica_id).read_text())
            url, pid = str(entry["url"]), int(entry["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return url if _alive(pid) else None

    def forget(self, url: str) -> None:
        """Nothing to drop: every lookup reads the file."""

    async def unregister(self) -> None:
        """Delete this worker's file (at stop): its sessions end with it."""
        with contextlib.suppress(OSError):
            (self.directory / self.replica_id).unlink()


def _private(directory: Path) -> bool:
    """Whether only this user can write in `directory` (its own, no group or other permissions)."""
    info = directory.stat()
    return info.st_uid == os.getuid() and info.st_mode & 0o077 == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, run by another user
        return True
    return True
