"""MCP sessions on `toolhub serve --workers 2` without stickiness: the kernel hands each connection to either worker,
so a session opened on one worker sees most of its requests land on the other. Each worker listens on a port of its
own besides the shared one and advertises it (in Redis with `redis_url`, else in a directory its supervisor keeps),
so the worker that gets a request for a session it does not hold forwards it to exactly the owner. Tested with the
official MCP client over the shared port (a fresh connection per request), and with another replica forwarding a
session's requests to the workers' server through Redis."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
import yaml

from hub.mcp.forward import owner_of
from hub.mcp.forward.local import CHECK_SECONDS
from hub.scale.supervisor import worker_listener
from tests.mcp.conftest import everything_stdio, requires_everything, text_of
from tests.scale.support import MASTER, STARTUP_TIMEOUT, redis_url
from tests.scale.test_mcp_replicas import ACCEPT, AUTH, INITIALIZE, Seen, client_session
from tests.scale.test_workers import children, wait_for
from tests.support.servers import inherited_socket, stop, wait_until_serving

SESSIONS = 10
ROUNDS = 3
LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}


@contextlib.contextmanager
def toolhub(
    tmp_path: Path, name: str, *, workers: int, redis: bool, advertise: bool, master: bool = True
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`toolhub serve` on an inherited loopback socket, with `workers` processes and the everything server over
    stdio; `advertise` sets `replica_url` to that socket's URL. Yields (base URL, process) once every worker is
    ready."""
    with inherited_socket() as (sock, port):
        url = f"http://127.0.0.1:{port}"
        general: dict[str, Any] = {"database_url": f"sqlite:///{tmp_path}/{name}.db"}
        general |= {"master_key": MASTER} if master else {}
        general |= {"redis_url": redis_url()} if redis else {}
        general |= {"replica_url": url} if advertise else {}
        config = tmp_path / f"{name}.yaml"
        config.write_text(yaml.safe_dump({"general_settings": general, "mcp_servers": {"ev": everything_stdio()}}))
        proc = subprocess.Popen(
            [sys.executable, "-m", "hub", "serve", "--config", str(config), "--fd", str(sock.fileno()),
             "--workers", str(workers), "--log-level", "warning"], env=dict(os.environ),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, pass_fds=(sock.fileno(),),
        )  # fmt: skip
    try:
        wait_until_serving(f"{url}/health/liveness", proc, timeout=STARTUP_TIMEOUT)
        _until_ready(url)
        yield url, proc
    finally:
        stop(proc, timeout=60)


def _until_ready(url: str, streak: int = 20) -> None:
    """Readiness (the everything server had its first try) answered `streak` times in a row, each on a fresh
    connection, so every worker has answered it (bounded)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    ready = 0
    while ready < streak:
        assert time.monotonic() < deadline, f"{url} did not get ready"
        ready = ready + 1 if httpx2.get(f"{url}/health/readiness").status_code == 200 else 0
        if not ready:
            time.sleep(0.1)


async def one_session(url: str) -> tuple[Seen, list[list[str]]]:
    """The official client: initialize, then `ROUNDS` times tools/list and a call with progress notifications."""
    seen = Seen()
    checks: list[list[str]] = []
    async with client_session(url, seen) as client:
        with anyio.fail_after(120):
            for _ in range(ROUNDS):
                names = {tool.name for tool in (await client.list_tools()).tools}
                args = {"duration": 0.2, "steps": 2}
                long = await client.call_tool(
                    "ev__trigger-long-running-operation", args, progress_callback=seen.on_progress
                )
                checks.append([str("ev__trigger-long-running-operation" in names), str("completed" in text_of(long))])
    return seen, checks


def sessions_through(url: str) -> list[tuple[Seen, list[list[str]]]]:
    """`SESSIONS` sessions at once, so that both workers open some: one after another, the kernel may hand every
    `initialize` to the worker that woke first (it did, once, in CI). At most three more waves if one worker still
    opened them all."""

    async def wave() -> list[tuple[Seen, list[list[str]]]]:
        found: list[tuple[Seen, list[list[str]]]] = []

        async def one() -> None:
            found.append(await one_session(url))

        async with anyio.create_task_group() as group:
            for _ in range(SESSIONS):
                group.start_soon(one)
        return found

    async def all_of_them() -> list[tuple[Seen, list[list[str]]]]:
        results: list[tuple[Seen, list[list[str]]]] = []
        for _ in range(4):
            results += await wave()
            if len({owner_of(s) for seen, _ in results for s in seen.session_ids}) > 1:
                break
        return results

    return anyio.run(all_of_them)


def assert_every_session_worked_on_both_workers(results: list[tuple[Seen, list[list[str]]]]) -> None:
    assert [checks for _, checks in results] == [[["True", "True"]] * ROUNDS] * len(results)
    assert [seen.progress for seen, _ in results] == [[(1.0, 2.0), (2.0, 2.0)] * ROUNDS] * len(results)
    owners = {owner_of(session_id) for seen, _ in results for session_id in seen.session_ids}
    assert len(owners) == 2 and None not in owners  # both workers opened sessions, each id names its worker


@pytest.fixture(autouse=True)
def _everything() -> None:
    requires_everything()


def test_sessions_work_whichever_worker_each_request_reaches_with_redis(tmp_path: Path) -> None:
    with toolhub(tmp_path, "a", workers=2, redis=True, advertise=True) as (url, _):
        results = sessions_through(url)
    assert_every_session_worked_on_both_workers(results)


def test_without_a_master_key_to_sign_the_redis_registry_workers_forward_between_themselves(tmp_path: Path) -> None:
    with toolhub(tmp_path, "a", workers=2, redis=True, advertise=True, master=False) as (url, _):
        results = sessions_through(url)
    assert_every_session_worked_on_both_workers(results)


def test_sessions_work_whichever_worker_each_request_reaches_without_redis(tmp_path: Path) -> None:
    with toolhub(tmp_path, "a", workers=2, redis=False, advertise=False) as (url, proc):
        results = sessions_through(url)
        directory = _registry_of(proc.pid)
        advertised = _advertised(directory)
        victim = min(children(proc.pid))
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: len(_advertised(directory)) == 2 and victim not in _advertised(directory).values(),
                 "the killed worker's file replaced by its successor's")  # fmt: skip
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    assert_every_session_worked_on_both_workers(results)
    assert sorted(advertised) == sorted({owner_of(s) or "" for seen, _ in results for s in seen.session_ids})
    assert not directory.exists()  # removed at stop


def test_workers_advertise_themselves_again_after_their_directory_was_removed(tmp_path: Path) -> None:
    """A /tmp cleaner removes the workers' directory while they run: each worker writes its file again (and the
    directory, private) within `CHECK_SECONDS`, so a worker again forwards a request for the other's session. Before:
    nobody wrote them again, and every such request answered 404 until a worker died."""
    with toolhub(tmp_path, "a", workers=2, redis=False, advertise=False) as (_, proc):
        directory = _registry_of(proc.pid)
        wait_for(lambda: len(_advertised(directory)) == 2, "both workers' files")
        owner, other = (json.loads((directory / name).read_text())["url"] for name in sorted(_advertised(directory)))
        with httpx2.Client(headers=AUTH, timeout=30) as http:
            session = http.post(f"{owner}/mcp", json=INITIALIZE, headers=ACCEPT).headers["mcp-session-id"]
            listed = {**ACCEPT, "mcp-session-id": session}
            assert http.post(f"{other}/mcp", json=LIST, headers=listed).status_code == 200  # forwarded to the owner
            shutil.rmtree(directory)
            wait_for(lambda: http.post(f"{other}/mcp", json=LIST, headers=listed).status_code == 200,
                     "the other worker forwards the session's requests again", CHECK_SECONDS * 4)  # fmt: skip
        # the owner's file is back; the other worker writes its own on its own timer, up to CHECK_SECONDS apart
        wait_for(lambda: directory.is_dir() and len(_advertised(directory)) == 2, "both workers' files again",
                 CHECK_SECONDS * 4)  # fmt: skip
        assert sorted(_advertised(directory).values()) == sorted(children(proc.pid))
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def _registry_of(supervisor: int) -> Path:
    """The workers' directory, from a worker's command line (`--worker-registry`)."""
    argv = Path(f"/proc/{min(children(supervisor))}/cmdline").read_bytes().split(b"\0")
    return Path(argv[argv.index(b"--worker-registry") + 1].decode())


def _advertised(directory: Path) -> dict[str, int]:
    """Replica id -> pid of each worker's file."""
    found: dict[str, int] = {}
    for path in directory.iterdir():
        with contextlib.suppress(OSError, ValueError):
            found[path.name] = json.loads(path.read_text())["pid"]
    return found


def test_another_replica_forwards_to_the_worker_that_holds_the_session(tmp_path: Path) -> None:
    with (
        toolhub(tmp_path, "a", workers=2, redis=True, advertise=True) as (workers, _),
        toolhub(tmp_path, "b", workers=1, redis=True, advertise=True) as (other, _),
        httpx2.Client(headers=AUTH, timeout=30, limits=httpx2.Limits(max_keepalive_connections=0)) as http,
    ):
        opened = [http.post(f"{workers}/mcp", json=INITIALIZE, headers=ACCEPT) for _ in range(SESSIONS)]
        sessions = [answer.headers["mcp-session-id"] for answer in opened]
        answers = [
            http.post(f"{base}/mcp", json=LIST, headers={**ACCEPT, "mcp-session-id": session}).status_code
            for session in sessions
            for base in (other, workers, other)
        ]
    assert [answer.status_code for answer in opened] == [200] * SESSIONS
    assert answers == [200] * 3 * SESSIONS
    assert len({owner_of(session) for session in sessions}) == 2


def test_a_worker_listens_on_the_advertised_address_only() -> None:
    sock, url = worker_listener("http://127.0.0.1:4000")
    with sock:
        assert (sock.getsockname()[0], url) == ("127.0.0.1", f"http://127.0.0.1:{sock.getsockname()[1]}")
    sock, url = worker_listener(None)
    with sock:
        assert url == f"http://127.0.0.1:{sock.getsockname()[1]}"
    with pytest.raises(OSError):  # TEST-NET-1: no interface of this machine has it
        worker_listener("http://192.0.2.7:4000")


def test_workers_refuse_a_replica_url_that_is_not_this_machines(tmp_path: Path) -> None:
    general = {"master_key": MASTER, "database_url": f"sqlite:///{tmp_path}/t.db", "redis_url": redis_url(),
               "replica_url": "http://192.0.2.7:4000"}  # fmt: skip
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"general_settings": general}))
    with inherited_socket() as (sock, _):
        done = subprocess.run(
            [sys.executable, "-m", "hub", "serve", "--config", str(config), "--fd", str(sock.fileno()),
             "--workers", "2"], pass_fds=(sock.fileno(),), capture_output=True, timeout=STARTUP_TIMEOUT,
        )  # fmt: skip
    assert done.returncode == 2
    assert b"config error at general_settings.replica_url" in done.stderr
