"""MCP sessions across replicas (hub/mcp/forward): ids that name their replica, the Redis registry, the decision
to forward, and two in-process hubs taking turns at one client's requests as a round-robin balancer would."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2
import mcp_types as types
import pytest
import uvicorn
from mcp import Client
from mcp.client.session import ClientRequestContext
from mcp.client.streamable_http import streamable_http_client

from hub.accounts.ratelimit import redis_client
from hub.mcp.forward import (
    FORWARDED_HEADER,
    Forwarder,
    RegistryUnavailable,
    ReplicaRegistry,
    WorkerRegistry,
    owner_of,
    session_prefix,
)
from hub.mcp.forward.proxy import forward_client
from hub.mcp.forward.registry import KEY_PREFIX, entry, forward_secret, new_replica_id, verified_url
from tests.mcp.conftest import MASTER_KEY, eventually, hub_app, running, script_server, text_of, tool_server
from tests.support.peers import missing_peer
from tests.support.servers import free_socket

pytestmark = pytest.mark.anyio
AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
SECRET = forward_secret(MASTER_KEY)
INITIALIZE = {
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}  # fmt: skip
ACCEPT = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def redis_url() -> str:
    url = os.environ.get("TOOLHUB_TEST_REDIS_URL")
    if not url:
        missing_peer("set TOOLHUB_TEST_REDIS_URL=redis://127.0.0.1:6379/0 to run the replica forwarding tests")
    return url


class DictRedis:
    """The three Redis commands the registry uses, on a dict (for the decision table, which needs no expiry)."""

    def __init__(self, entries: dict[str, str]) -> None:
        self.entries = entries

    async def get(self, key: str) -> bytes | None:
        value = self.entries.get(key)
        return None if value is None else value.encode()


def test_a_session_id_names_its_replica_and_stays_visible_ascii() -> None:
    replica = new_replica_id()
    session_id = f"{session_prefix(replica)}{'ab' * 16}"
    assert owner_of(session_id) == replica
    assert all(0x21 <= ord(c) <= 0x7E for c in session_id)
    assert owner_of("ab" * 16) is None  # a replica without forwarding issues plain ids
    assert owner_of(f"{replica}-") is None
    assert owner_of("../../etc-x") is None  # never a Redis key of the client's making
    assert owner_of(f"{replica[:-1]}A-x") is None  # upper case (an id of digits only has no letter to raise)


async def test_the_registry_keeps_an_expiring_entry_and_removes_it_at_stop() -> None:
    client = redis_client(redis_url())
    mine, other = ReplicaRegistry(client, new_replica_id(), "http://10.0.0.5:4000", SECRET, ttl=30), new_replica_id()
    try:
        assert await mine.register()
        assert await mine.url_of(mine.replica_id) == "http://10.0.0.5:4000"
        assert 0 < await client.pttl(KEY_PREFIX + mine.replica_id) <= 30_000
        assert await mine.url_of(other) is None
        await mine.unregister()
        assert await mine.url_of(mine.replica_id) is None
    finally:
        await client.aclose()


async def test_a_registry_without_redis_answers_unknown() -> None:
    client = redis_client("redis://127.0.0.1:1/0")  # nothing listens on port 1
    registry = ReplicaRegistry(client, new_replica_id(), "http://10.0.0.5:4000", SECRET)
    try:
        assert not await registry.register()
        with pytest.raises(RegistryUnavailable):  # 503, not 404: the session may well be alive
            await registry.url_of(new_replica_id())
    finally:
        await client.aclose()


async def test_a_workers_directory_names_live_workers_only(tmp_path: Path) -> None:
    here = WorkerRegistry(tmp_path, new_replica_id(), "http://127.0.0.1:1234")
    here.register()
    dead = new_replica_id()
    (tmp_path / dead).write_text(json.dumps({"url": "http://127.0.0.1:9", "pid": _exited_pid()}))
    (tmp_path / "torn").write_text('{"url": "http')
    other = WorkerRegistry(tmp_path, new_replica_id(), "http://127.0.0.1:5678")
    found = [await other.url_of(name) for name in (here.replica_id, dead, "torn", "../torn", new_replica_id())]
    await here.unregister()
    assert found == ["http://127.0.0.1:1234", None, None, None, None]
    assert await other.url_of(here.replica_id) is None
    assert _names(tmp_path) == sorted([dead, "torn"])  # what is not its own is the supervisor's to delete


def _names(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def _exited_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _scope(*headers: tuple[bytes, bytes]) -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": "/mcp", "headers": list(headers)}


async def test_only_a_session_of_another_live_replica_is_forwarded() -> None:
    me, alive, gone = new_replica_id(), new_replica_id(), new_replica_id()
    entries = {KEY_PREFIX + alive: entry(SECRET, alive, "http://10.0.0.6:4000")}
    registry = ReplicaRegistry(DictRedis(entries), me, "http://10.0.0.5:4000", SECRET)
    forwarder = Forwarder(registry, forward_client())
    held = f"{me}-{'1' * 32}"

    async def target(*headers: tuple[bytes, bytes]) -> str | None:
        return await forwarder.target(_scope(*headers), lambda session_id: session_id == held)

    session = b"mcp-session-id"
    assert await target((session, f"{alive}-{'2' * 32}".encode())) == "http://10.0.0.6:4000"
    assert await target() is None  # no session: a new one starts here
    assert await target((session, held.encode())) is None  # held here
    assert await target((session, f"{me}-{'3' * 32}".encode())) is None  # ours, but ended: 404 here
    assert await target((session, f"{gone}-{'4' * 32}".encode())) is None  # its replica is gone: 404 here
    assert await target((session, b"2" * 32)) is None  # a plain id names no replica
    elsewhere = (session, f"{alive}-{'2' * 32}".encode())
    assert await target((session, held.encode()), elsewhere) is None  # the first header counts, as for the SDK
    assert await target(elsewhere, (session, held.encode())) == "http://10.0.0.6:4000"
    hop = (FORWARDED_HEADER, alive.encode())
    assert await target(hop, (session, f"{alive}-{'2' * 32}".encode())) is None  # never forwarded twice
    await forwarder.client.aclose()


@contextlib.contextmanager
def replica(servers: dict[str, Any], **general: Any) -> Iterator[str]:
    """A hub on a loopback socket whose URL is known before the app is built (it goes into `replica_url`)."""
    sock = free_socket()
    sock.listen(128)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = hub_app(servers, replica_url=url, redis_url=redis_url(), **general)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", loop="asyncio", ws="none"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        eventually(lambda: server.started, what="the replica to start")
        eventually(lambda: httpx2.get(f"{url}/health/readiness").status_code == 200, what="readiness")
        yield url
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


class RoundRobin(httpx2.AsyncBaseTransport):
    """A load balancer in the client: each request goes to the next base URL, whatever URL it was made for."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = [httpx2.URL(url) for url in urls]
        self.sent = 0
        self.inner = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        target = self.urls[self.sent % len(self.urls)]
        self.sent += 1
        request.url = request.url.copy_with(host=target.host, port=target.port)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@contextlib.asynccontextmanager
async def balanced(urls: list[str], **options: Any) -> AsyncIterator[tuple[Client, RoundRobin]]:
    transport = RoundRobin(urls)
    async with httpx2.AsyncClient(transport=transport, headers=AUTH, timeout=httpx2.Timeout(10, read=60)) as http:
        async with Client(streamable_http_client(f"{urls[0]}/mcp", http_client=http), mode="legacy", **options) as c:
            yield c, transport


@pytest.fixture(scope="module")
def pair() -> Iterator[list[str]]:
    servers = {"tool": tool_server(), "ask": script_server("ask_server.py")}
    with replica(servers) as a, replica(servers) as b:
        yield [a, b]


async def test_a_session_works_whichever_replica_each_request_reaches(pair: list[str]) -> None:
    logs: list[Any] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params.data)

    async def sample(ctx: ClientRequestContext, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        return types.CreateMessageResult(role="assistant", model="m", content=types.TextContent(type="text", text="me"))

    answers: list[tuple[str, ...]] = []
    async with balanced(pair, logging_callback=on_log, sampling_callback=sample) as (client, balancer):
        for _ in range(3):
            tools = {tool.name for tool in (await client.list_tools()).tools}
            echoed = await client.call_tool("tool__echo", {"text": "hi"})
            logged = await client.call_tool("tool__log", {"text": "hi"})
            asked = await client.call_tool("ask__ask", {})
            answers.append((str({"tool__echo", "ask__ask"} <= tools), text_of(echoed), text_of(logged), text_of(asked)))
    assert answers == [("True", "echo: hi", "logged", "me")] * 3
    assert logs == [{"said": "hi"}] * 3
    assert balancer.sent >= 12  # every other one reached the replica that did not open the session


async def test_the_session_id_names_a_registered_replica(pair: list[str]) -> None:
    async with httpx2.AsyncClient(headers=AUTH) as http:
        opened = await http.post(f"{pair[0]}/mcp", json=INITIALIZE, headers=ACCEPT)
        session_id = opened.headers["mcp-session-id"]
        owner = owner_of(session_id)
        assert owner is not None
        client = redis_client(redis_url())
        try:
            assert verified_url(SECRET, owner, await client.get(KEY_PREFIX + owner)) == pair[0]
        finally:
            await client.aclose()
        ended = await http.delete(f"{pair[1]}/mcp", headers={"mcp-session-id": session_id})  # forwarded: ends it
        after = await http.post(f"{pair[0]}/mcp", json=_list(), headers={**ACCEPT, "mcp-session-id": session_id})
    assert (opened.status_code, ended.status_code, after.status_code) == (200, 200, 404)


async def test_a_forwarded_request_is_not_forwarded_again(pair: list[str]) -> None:
    async with httpx2.AsyncClient(headers=AUTH) as http:
        opened = await http.post(f"{pair[0]}/mcp", json=INITIALIZE, headers=ACCEPT)
        session = {"mcp-session-id": opened.headers["mcp-session-id"], **ACCEPT}
        looped = await http.post(f"{pair[1]}/mcp", json=_list(), headers={**session, "x-toolhub-forwarded-by": "x"})
        other_key = await http.post(f"{pair[1]}/mcp", json=_list(), headers={**session, "authorization": "Bearer no"})
    assert looped.status_code == 404
    assert looped.json()["error"]["message"] == "Session not found"
    assert other_key.status_code == 401  # authenticated before anything is forwarded


@contextlib.contextmanager
def hanging_up() -> Iterator[int]:
    """A port whose server reads a request and closes the connection without an answer (a replica dying mid-hop)."""
    sock = free_socket()
    sock.listen(8)

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = sock.accept()
                with conn:
                    conn.recv(65536)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


async def test_a_session_of_an_unknown_or_dead_replica_is_not_found(pair: list[str]) -> None:
    client = redis_client(redis_url())
    refusing, hung_up = new_replica_id(), new_replica_id()
    with free_socket() as dead, hanging_up() as port:  # bound, never listening: refuses connections
        refused_url = f"http://127.0.0.1:{dead.getsockname()[1]}"
        await client.set(KEY_PREFIX + refusing, entry(SECRET, refusing, refused_url), px=30_000)
        await client.set(KEY_PREFIX + hung_up, entry(SECRET, hung_up, f"http://127.0.0.1:{port}"), px=30_000)
        try:
            async with httpx2.AsyncClient(headers=AUTH, timeout=10) as http:
                answers = [
                    await http.post(f"{pair[0]}/mcp", json=_list(), headers={**ACCEPT, "mcp-session-id": session})
                    for session in (f"{refusing}-{'5' * 32}", f"{hung_up}-{'6' * 32}", f"{new_replica_id()}-{'7' * 32}")
                ]
        finally:
            await client.delete(KEY_PREFIX + refusing, KEY_PREFIX + hung_up)
            await client.aclose()
    assert [(a.status_code, a.json()["error"]["message"]) for a in answers] == [(404, "Session not found")] * 3


def test_without_a_replica_url_session_ids_are_plain() -> None:
    with running(hub_app({"tool": tool_server()}, redis_url=redis_url())) as url:
        opened = httpx2.post(f"{url}/mcp", json=INITIALIZE, headers={**ACCEPT, **AUTH})
    assert len(opened.headers["mcp-session-id"]) == 32


def _list() -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
