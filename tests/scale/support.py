"""What the scale tests share: a fast fake upstream process, a PostgreSQL schema of their own, configs, bursts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx2
import yaml

from tests.support.peers import missing_peer
from tests.support.servers import ROOT, inherited_socket, stop, wait_for_port, wait_until_serving

MASTER = "sk-scale-master"
POSTGRES_URL_ENV = "TOOLHUB_TEST_POSTGRES_URL"
REDIS_URL_ENV = "TOOLHUB_TEST_REDIS_URL"


def postgres_url() -> str:
    url = os.environ.get(POSTGRES_URL_ENV)
    if not url:
        missing_peer(f"set {POSTGRES_URL_ENV}=postgresql://postgres@127.0.0.1:5432/test to run the scale tests")
    return url


def redis_url() -> str:
    url = os.environ.get(REDIS_URL_ENV)
    if not url:
        missing_peer(f"set {REDIS_URL_ENV}=redis://127.0.0.1:6379/0 to run the scale tests")
    return url


@contextlib.contextmanager
def fake_upstream() -> Iterator[int]:
    """bench/fake_upstream.py as a process (an OpenAI-compatible upstream that costs little CPU); yields its port."""
    with inherited_socket() as (sock, port):
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "fake_upstream.py"), "--fd", str(sock.fileno())],
            pass_fds=(sock.fileno(),), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
    try:
        wait_for_port(port, proc)
        yield port
    finally:
        stop(proc)


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A fresh schema in the test database, dropped afterwards; yields a URL whose connections use it."""
    url = postgres_url()
    schema = f"toolhub_scale_{uuid.uuid4().hex[:12]}"
    asyncio.run(_sql(url, f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{url}?search_path={schema}"
    finally:
        asyncio.run(_sql(url, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


async def _sql(url: str, statement: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def write_config(path: Path, upstream: int | str, *, database_url: str, redis: str | None = None,
                 spill: Path | None = None, model: str = "openai/bench", api_key: str = "sk-x",
                 **general: Any) -> Path:  # fmt: skip
    """A config with one alias, `bench`, on `upstream` (a port of bench/fake_upstream.py, or a base URL)."""
    settings: dict[str, Any] = {"master_key": MASTER, "database_url": database_url, **general}
    if redis:
        settings["redis_url"] = redis
    if spill:
        settings["usage_spill_path"] = str(spill)
    base = upstream if isinstance(upstream, str) else f"http://127.0.0.1:{upstream}"
    entry = {"model_name": "bench", "litellm_params": {"model": model, "api_key": api_key, "api_base": f"{base}/v1"}}
    path.write_text(yaml.safe_dump({"model_list": [entry], "general_settings": settings}))
    return path


def chat_body() -> dict[str, Any]:
    return {"model": "bench", "messages": [{"role": "user", "content": "hi"}]}


async def burst(
    url: str, count: int, concurrency: int, *, key: str = MASTER, on_answer: Callable[[int], None] | None = None
) -> dict[str, int]:
    """POST `count` chat requests, each with its own x-request-id; returns request id -> status (0: no answer).

    `on_answer(n)` runs after the n-th answer (any status), e.g. to kill a server mid-burst."""
    results: dict[str, int] = {}
    queue = [uuid.uuid4().hex for _ in range(count)]
    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx2.AsyncClient(timeout=30, limits=limits) as client:

        async def worker() -> None:
            while queue:
                rid = queue.pop()
                headers = {"authorization": f"Bearer {key}", "x-request-id": rid}
                try:
                    response = await client.post(f"{url}/v1/chat/completions", json=chat_body(), headers=headers)
                    results[rid] = response.status_code
                except httpx2.HTTPError:
                    results[rid] = 0
                    continue
                if on_answer is not None:
                    on_answer(sum(1 for status in results.values() if status))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


def rows_per_request(database_url: str) -> Counter[str]:
    """How many spend-log rows each request id has."""

    async def fetch() -> list[Any]:
        conn = await asyncpg.connect(database_url.split("?")[0], server_settings=_settings(database_url))
        try:
            return list(await conn.fetch("SELECT request_id FROM toolhub_spend_logs"))
        finally:
            await conn.close()

    return Counter(row["request_id"] for row in asyncio.run(fetch()))


def _settings(database_url: str) -> dict[str, str]:
    _, _, query = database_url.partition("?")
    return dict(part.split("=", 1) for part in query.split("&") if part)


STARTUP_TIMEOUT = 180
"""Seconds a `toolhub serve` may take to come up: imports alone took 13 s of wall time on a loaded 2-core machine."""


@contextlib.contextmanager
def serving(
    config: Path, *, args: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`python -m hub serve` on an inherited loopback socket (as tests.support.servers.toolhub_process, with a
    startup timeout fit for several processes starting at once); yields (base URL, process)."""
    with replicas([config], args=args, env=env) as [(url, proc)]:
        yield url, proc


@contextlib.contextmanager
def replicas(
    configs: list[Path], *, args: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> Iterator[list[tuple[str, subprocess.Popen[bytes]]]]:
    """One `toolhub serve` per config, all started before waiting for any; yields (base URL, process) of each."""
    started: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        for config in configs:
            with inherited_socket() as (sock, port):
                fd = str(sock.fileno())
                proc = subprocess.Popen(
                    [sys.executable, "-m", "hub", "serve", "--config", str(config), "--fd", fd, "--log-level",
                     "warning", *args], env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE, pass_fds=(sock.fileno(),),
                )  # fmt: skip
            started.append((f"http://127.0.0.1:{port}", proc))
        for url, proc in started:
            wait_until_serving(f"{url}/health/liveness", proc, timeout=STARTUP_TIMEOUT)
        yield started
    finally:
        for _, proc in started:
            stop(proc, timeout=60)


def haproxy_binary() -> str:
    found = shutil.which("haproxy") or next((p for p in ("/usr/sbin/haproxy",) if Path(p).exists()), None)
    if found is None:
        missing_peer("haproxy missing: run scripts/setup (it runs apt-get install -y haproxy)")
    return found


@contextlib.contextmanager
def haproxy(backends: list[str], tmp_path: Path) -> Iterator[str]:
    """Debian's haproxy in front of `backends` (base URLs): round robin, no stickiness, health checks on
    /health/liveliness; a connection refused by a dead backend is retried on another one (the request never left).
    Yields the load balancer's base URL."""
    binary = haproxy_binary()
    check = "check inter 300ms fall 1 rise 2"
    servers = "\n".join(f"    server r{i} {url.removeprefix('http://')} {check}" for i, url in enumerate(backends))
    with inherited_socket() as (sock, port):
        config = tmp_path / "haproxy.cfg"
        config.write_text(_HAPROXY.format(fd=sock.fileno(), servers=servers))
        proc = subprocess.Popen([binary, "-db", "-f", str(config)], pass_fds=(sock.fileno(),),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/health/liveness", proc, timeout=STARTUP_TIMEOUT)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


_HAPROXY = """global
    maxconn 2000
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    retries 2
    option redispatch
frontend toolhub
    bind fd@{fd}
    default_backend replicas
backend replicas
    balance roundrobin
    option httpchk GET /health/liveliness
{servers}
"""
