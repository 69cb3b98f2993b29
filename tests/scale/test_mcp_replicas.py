"""MCP sessions through a round-robin load balancer, no stickiness: three `toolhub serve` replicas sharing Redis, each
advertising its own URL (`replica_url`), behind Debian's haproxy. The official MCP client's session (initialize,
tools/list, a call with progress notifications, a call whose upstream asks the client for sampling) works ten times
over, each of its requests landing wherever the balancer sends it; a session whose replica was killed answers 404
and a new one works."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
import yaml
from mcp import Client
from mcp.client.session import ClientRequestContext
from mcp.client.streamable_http import streamable_http_client

from hub.mcp.forward import owner_of
from tests.mcp.conftest import everything_stdio, requires_everything, text_of
from tests.scale.support import MASTER, STARTUP_TIMEOUT, haproxy, haproxy_binary, postgres_schema, redis_url
from tests.support.servers import inherited_socket, stop, wait_until_serving

AUTH = {"authorization": f"Bearer {MASTER}"}
ACCEPT = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
INITIALIZE = {
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}  # fmt: skip


@dataclass
class Cluster:
    balancer: str
    replicas: list[str]
    procs: list[subprocess.Popen[bytes]]


@contextlib.contextmanager
def mcp_replicas(tmp_path: Path, database_url: str, count: int = 3) -> Iterator[list[tuple[str, Any]]]:
    """`toolhub serve` replicas, each told its own URL (which is known only once its socket is bound)."""
    started: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        for i in range(count):
            with inherited_socket() as (sock, port):
                url = f"http://127.0.0.1:{port}"
                general = {"master_key": MASTER, "database_url": database_url, "redis_url": redis_url(),
                           "replica_url": url}  # fmt: skip
                config = tmp_path / f"replica{i}.yaml"
                config.write_text(
                    yaml.safe_dump({"general_settings": general, "mcp_servers": {"ev": everything_stdio()}})
                )
                proc = subprocess.Popen(
                    [sys.executable, "-m", "hub", "serve", "--config", str(config), "--fd", str(sock.fileno()),
                     "--log-level", "warning"], env=dict(os.environ), stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE, pass_fds=(sock.fileno(),),
                )  # fmt: skip
            started.append((url, proc))
        for url, proc in started:
            wait_until_serving(f"{url}/health/liveness", proc, timeout=STARTUP_TIMEOUT)
            _until_ready(url)
        yield started
    finally:
        for _, proc in started:
            stop(proc, timeout=60)


def _until_ready(url: str) -> None:
    """Readiness: the `everything` upstream had its first connection attempt (bounded)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while httpx2.get(f"{url}/health/readiness").status_code != 200:
        assert time.monotonic() < deadline, f"{url} did not get ready"
        time.sleep(0.1)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    haproxy_binary()
    requires_everything()
    with postgres_schema() as database_url, mcp_replicas(tmp_path, database_url) as started:
        with haproxy([url for url, _ in started], tmp_path) as balancer:
            yield Cluster(balancer, [url for url, _ in started], [proc for _, proc in started])


class Seen:
    """What the client was sent, and which replicas answered its requests (from the `mcp-session-id` it got)."""

    def __init__(self) -> None:
        self.progress: list[tuple[float, float | None]] = []
        self.prompts: list[str] = []
        self.session_ids: set[str] = set()

    async def on_progress(self, progress: float, total: float | None, message: str | None) -> None:
        self.progress.append((progress, total))

    async def sample(self, context: ClientRequestContext, params: types.CreateMessageRequestParams) -> Any:
        content = params.messages[0].content
        self.prompts.append(content.text if isinstance(content, types.TextContent) else "")
        return types.CreateMessageResult(
            role="assistant", model="test-model", content=types.TextContent(type="text", text="sampled by the client")
        )

    async def on_response(self, response: httpx2.Response) -> None:
        if session_id := response.headers.get("mcp-session-id"):
            self.session_ids.add(session_id)


@contextlib.asynccontextmanager
async def client_session(url: str, seen: Seen) -> AsyncIterator[Client]:
    """The official client over streamable HTTP; a fresh connection per request, so haproxy's round robin spreads
    one session's requests over every replica."""
    limits = httpx2.Limits(max_keepalive_connections=0)
    async with httpx2.AsyncClient(headers=AUTH, timeout=httpx2.Timeout(10, read=60), limits=limits,
                                  event_hooks={"response": [seen.on_response]}) as http:  # fmt: skip
        async with Client(streamable_http_client(f"{url}/mcp", http_client=http), mode="legacy",
                          sampling_callback=seen.sample) as client:  # fmt: skip
            yield client


async def one_session(url: str) -> tuple[Seen, list[str]]:
    seen = Seen()
    async with client_session(url, seen) as client:
        with anyio.fail_after(60):
            names = {tool.name for tool in (await client.list_tools()).tools}
            args = {"duration": 0.3, "steps": 3}
            long = await client.call_tool(
                "ev__trigger-long-running-operation", args, progress_callback=seen.on_progress
            )
            sampled = await client.call_tool("ev__trigger-sampling-request", {"prompt": "hi", "maxTokens": 10})
    found = str({"ev__trigger-long-running-operation", "ev__trigger-sampling-request"} <= names)
    return seen, [found, str("completed" in text_of(long)), str("sampled by the client" in text_of(sampled))]


def test_an_mcp_session_works_through_the_balancer_ten_times_over(cluster: Cluster) -> None:
    async def ten() -> list[tuple[Seen, list[str]]]:
        return [await one_session(cluster.balancer) for _ in range(10)]

    results = anyio.run(ten)
    assert [checks for _, checks in results] == [["True", "True", "True"]] * 10
    assert [seen.progress for seen, _ in results] == [[(1.0, 3.0), (2.0, 3.0), (3.0, 3.0)]] * 10
    assert [seen.prompts for seen, _ in results] == [["Resource trigger-sampling-request context: hi"]] * 10
    owners = {owner_of(session_id) for seen, _ in results for session_id in seen.session_ids}
    assert len(owners) == 3 and None not in owners  # sessions were opened on every replica, each id names its own


def test_a_session_whose_replica_is_gone_is_not_found_and_a_new_one_works(cluster: Cluster) -> None:
    with httpx2.Client(headers=AUTH, timeout=30) as http:
        opened = http.post(f"{cluster.replicas[0]}/mcp", json=INITIALIZE, headers=ACCEPT)
        session = {"mcp-session-id": opened.headers["mcp-session-id"], **ACCEPT}
        listed = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
        before = [http.post(f"{url}/mcp", json=listed, headers=session).status_code for url in cluster.replicas]
        cluster.procs[0].send_signal(signal.SIGKILL)  # its Redis entry stays until it expires: the hop is refused
        assert cluster.procs[0].wait(10) == -signal.SIGKILL
        after = [http.post(f"{url}/mcp", json=listed, headers=session) for url in cluster.replicas[1:]]
        through = http.post(f"{cluster.balancer}/mcp", json=listed, headers=session)
    assert before == [200, 200, 200]
    assert [(a.status_code, a.json()["error"]["message"]) for a in [*after, through]] == [
        (404, "Session not found")
    ] * 3
    seen, checks = anyio.run(one_session, cluster.balancer)
    assert checks == ["True", "True", "True"] and seen.prompts
