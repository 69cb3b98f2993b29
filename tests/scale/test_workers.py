"""`toolhub serve --workers N`: workers on one port, a killed one restarted, metrics of all, clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from tests.fakes.openai_upstream import API_KEY, FakeOpenAI
from tests.scale.support import MASTER, STARTUP_TIMEOUT, burst, fake_upstream, serving, write_config
from tests.support.servers import inherited_socket, refusing_port, serve_app, stop, wait_until_serving

_SUPERVISOR = """
import logging, socket, sys
from hub.scale.supervisor import Supervisor
logging.basicConfig(level=logging.INFO)
sock = socket.create_server(("127.0.0.1", 0))
sys.exit(Supervisor(sock, [sys.executable, "-c", sys.argv[1], sys.argv[2]], 1, grace=5).run())
"""
_STARTING_WORKER = """
import asyncio, os, signal, sys, time
from pathlib import Path
import uvloop
from hub.ops.reload import _on_sighup

here = Path(sys.argv[1])
def report(name, text):
    (here / "partial").write_text(text)
    os.replace(here / "partial", here / name)

report("starting", str(os.getpid()))
for _ in range(6000):  # a worker still importing the app: no reload handler yet
    if (here / "go").exists():
        break
    time.sleep(0.01)

async def main():
    hup, marker = asyncio.Event(), asyncio.Event()
    with _on_sighup(hup.set):  # as the app's lifespan does
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, marker.set)
        os.kill(os.getpid(), signal.SIGUSR1)  # handled after any SIGHUP delivered before it
        await marker.wait()
        report("reloaded", str(hup.is_set()))
        await asyncio.Event().wait()

uvloop.run(main())  # the loop `toolhub serve` runs
"""

_REQUESTS = re.compile(rb'^toolhub_requests_total\{model="bench",provider="openai",status="200"\} (\S+)$', re.M)


def children(pid: int) -> set[int]:
    """The live child processes of `pid` (from /proc)."""
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                stat = (entry / "stat").read_text()
                fields = stat[stat.rindex(")") + 2 :].split()
                if int(fields[1]) == pid and fields[0] != "Z":
                    found.add(int(entry.name))
    return found


def wait_for(condition: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2] != "Z"


def sighup_handled(pid: int) -> bool:
    """Whether `pid` has a SIGHUP handler in place (its reload handler: hub/ops/reload.py)."""
    caught = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("SigCgt"))
    return bool(int(caught.split()[1], 16) & 1 << (signal.SIGHUP - 1))


def scraped_requests(url: str) -> float:
    text = httpx2.get(f"{url}/metrics", headers={"authorization": f"Bearer {MASTER}"}).content
    match = _REQUESTS.search(text)
    return float(match[1]) if match else 0.0


def per_worker_requests(metrics_dir: Path) -> list[float]:
    """Each worker's own count, read from its own counter file."""
    counts: list[float] = []
    for file in sorted(metrics_dir.glob("counter_*.db")):
        alone = metrics_dir.parent / f"one-{file.stem}"
        alone.mkdir(exist_ok=True)
        shutil.copy(file, alone / file.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))
        match = _REQUESTS.search(generate_latest(registry))
        counts.append(float(match[1]) if match else 0.0)
    return counts


@pytest.fixture
def upstream() -> Iterator[int]:
    with fake_upstream() as port:
        yield port


def test_two_workers_serve_one_port_and_every_scrape_counts_both(upstream: int, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", upstream, database_url=f"sqlite:///{tmp_path}/t.db")
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    with serving(config, args=("--workers", "2"), env=env) as (url, proc):
        assert len(children(proc.pid)) == 2
        results = asyncio.run(burst(url, 300, 16))
        assert list(results.values()) == [200] * 300
        wait_for(lambda: scraped_requests(url) == 300, "the metrics show all 300 requests")
        assert {scraped_requests(url) for _ in range(10)} == {300.0}  # whichever worker answers the scrape
        counts = per_worker_requests(metrics_dir)
        assert len(counts) == 2 and sum(counts) == 300


def test_a_killed_worker_is_restarted_and_the_port_keeps_serving(upstream: int, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", upstream, database_url=f"sqlite:///{tmp_path}/t.db")
    with serving(config, args=("--workers", "2")) as (url, proc):
        first = children(proc.pid)
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: len(children(proc.pid) - {victim}) == 2, "a new worker replaces the killed one")
        assert children(proc.pid) & first == first - {victim}
        results = asyncio.run(burst(url, 50, 8))
        assert list(results.values()) == [200] * 50


def test_sigterm_stops_every_worker_and_leaves_nothing_behind(upstream: int, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", upstream, database_url=f"sqlite:///{tmp_path}/t.db")
    with serving(config, args=("--workers", "2")) as (url, proc):
        workers = children(proc.pid)
        assert asyncio.run(burst(url, 20, 4)) and len(workers) == 2
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    assert not [pid for pid in workers if alive(pid)]
    assert list((tmp_path / "t.db.spill.journal").iterdir()) == []  # each worker closed its journal


def test_workers_of_a_killed_supervisor_exit_instead_of_lingering(upstream: int, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", upstream, database_url=f"sqlite:///{tmp_path}/t.db")
    with serving(config, args=("--workers", "2")) as (_url, proc):
        workers = children(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        wait_for(lambda: not [pid for pid in workers if alive(pid)], "the orphaned workers stop")


def test_workers_that_cannot_start_stop_the_server_with_uvicorns_startup_failure(tmp_path: Path) -> None:
    database_url = f"postgresql://nobody@127.0.0.1:{refusing_port()}/none"
    config = write_config(tmp_path / "c.yaml", 1, database_url=database_url)
    with inherited_socket() as (sock, _port):
        proc = subprocess.Popen(
            [sys.executable, "-m", "hub", "serve", "--config", str(config), "--fd", str(sock.fileno()), "--workers",
             "2"], pass_fds=(sock.fileno(),), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
    try:
        assert proc.wait(STARTUP_TIMEOUT) == 3
    finally:
        stop(proc)


def test_num_workers_of_litellm_is_accepted_on_the_command_line(upstream: int, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", upstream, database_url=f"sqlite:///{tmp_path}/t.db")
    with serving(config, args=("--num_workers", "2")) as (url, proc):
        wait_until_serving(f"{url}/health/liveliness", proc)
        assert len(children(proc.pid)) == 2


def test_sigterm_lets_the_requests_in_flight_finish(tmp_path: Path) -> None:
    fake = FakeOpenAI()
    with serve_app(fake.app) as upstream:
        config = write_config(tmp_path / "c.yaml", upstream, database_url=f"sqlite:///{tmp_path}/t.db",
                              model="openai/slow-3", api_key=API_KEY)  # fmt: skip
        with serving(config, args=("--workers", "2")) as (url, proc):
            results: dict[str, int] = {}
            client = threading.Thread(target=lambda: results.update(asyncio.run(burst(url, 6, 6))))
            client.start()
            wait_for(lambda: len(fake.requests) == 6, "six requests reach the upstream")
            proc.send_signal(signal.SIGTERM)
            client.join(60)
            assert proc.wait(60) == 0
    assert list(results.values()) == [200] * 6


def test_sighup_to_the_supervisor_reloads_the_workers_config(upstream: int, tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path}/t.db"
    config = write_config(tmp_path / "c.yaml", upstream, database_url=database_url)
    with serving(config, args=("--workers", "2")) as (url, proc):
        workers = children(proc.pid)  # the second may still be starting: its reload must wait, not be lost
        text = config.read_text().replace("model_name: bench", "model_name: renamed")
        config.write_text(text)
        proc.send_signal(signal.SIGHUP)

        def every_answer_renamed() -> bool:
            for _ in range(10):  # a new connection each: the kernel hands them to either worker
                listing = httpx2.get(f"{url}/v1/models", headers={"authorization": f"Bearer {MASTER}"}).json()
                if [m["id"] for m in listing["data"]] != ["renamed"]:
                    return False
            return True

        # a worker still importing on a loaded machine takes up to STARTUP_TIMEOUT to get there
        wait_for(lambda: all(sighup_handled(pid) for pid in workers), "both reload handlers in place", STARTUP_TIMEOUT)
        wait_for(every_answer_renamed, "both workers serve the reloaded config", STARTUP_TIMEOUT)
        assert children(proc.pid) == workers  # reloaded in place, not killed and restarted


def test_a_sighup_sent_while_a_worker_starts_reloads_it_once_its_handler_is_in_place(tmp_path: Path) -> None:
    """A reload relayed to a worker that has not yet installed its reload handler is neither lost nor fatal."""
    log = tmp_path / "supervisor.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", _SUPERVISOR, _STARTING_WORKER, str(tmp_path)], stderr=out)
    try:
        wait_for(lambda: (tmp_path / "starting").exists(), "the worker starts", STARTUP_TIMEOUT)
        worker = int((tmp_path / "starting").read_text())
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: b"config reload sent to 1 worker" in log.read_bytes(), "the reload is relayed")
        (tmp_path / "go").touch()
        wait_for(lambda: (tmp_path / "reloaded").exists(), "the worker installs its handler", STARTUP_TIMEOUT)
        assert (tmp_path / "reloaded").read_text() == "True"
        assert children(proc.pid) == {worker}  # the same worker: not killed and restarted
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        stop(proc)
