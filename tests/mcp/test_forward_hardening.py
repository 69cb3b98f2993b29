"""What a forward must not do (hub/mcp/forward): send a client's key to a URL it did not get from a replica, end a
session because Redis failed, answer a broken hop with a plain 500, send headers twice, or end a broken stream as
if it were complete. The fake owner is a raw socket server, so the test sees exactly what the hop sends."""

from __future__ import annotations

import contextlib
import logging
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
import redis.exceptions

from hub.accounts.ratelimit import redis_client
from hub.mcp.forward import Forwarder, RegistryUnavailable, ReplicaRegistry, WorkerRegistry, replica_forwarding
from hub.mcp.forward.proxy import UNAVAILABLE, forward_client
from hub.mcp.forward.registry import KEY_PREFIX, entry, forward_secret, new_replica_id
from tests.mcp.conftest import tool_server
from tests.mcp.test_forward import ACCEPT, AUTH, SECRET, DictRedis, _list, redis_url, replica
from tests.support.servers import free_socket

pytestmark = pytest.mark.anyio
JSON_OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n"


class FakeOwner:
    """Records each request head it gets; answers JSON with its own date, server and request id, or with `?mode=die`
    an event stream cut off mid-event."""

    def __init__(self) -> None:
        self.sock = free_socket()
        self.sock.listen(16)
        self.heads: list[str] = []
        self.cut = threading.Event()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.sock.accept()
                threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            data = b""
            while b"\r\n\r\n" not in data and len(data) < 65536:
                if not (chunk := conn.recv(65536)):
                    return
                data += chunk
            head = data.partition(b"\r\n\r\n")[0].decode("latin-1")
            self.heads.append(head)
            if head.split(" ")[1].endswith("?mode=die"):
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
                             b"\r\n1a\r\nevent: message\ndata: one\n\n\r\n")  # fmt: skip
                self.cut.wait(20)  # until the client has the first event: a reset would discard it unread
                conn.sendall(b"40\r\nevent: message\ndata: cut")
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
                return
            conn.sendall(JSON_OK + b"date: Mon, 01 Jan 2001 00:00:00 GMT\r\nserver: owner\r\n"
                         b"x-request-id: owner-id\r\nconnection: close\r\n\r\n{}")  # fmt: skip


@pytest.fixture(scope="module")
def pair() -> Iterator[list[str]]:
    with replica({"tool": tool_server()}) as a:
        yield [a]


@contextlib.contextmanager
def fake_owner(signed: bool = True) -> Iterator[tuple[FakeOwner, str]]:
    """A fake owner registered in Redis under a fresh replica id (signed as a replica would, or not); yields it and
    a session id of that replica."""
    owner = FakeOwner()
    threading.Thread(target=owner.serve, daemon=True).start()
    replica_id = new_replica_id()
    value = entry(SECRET, replica_id, owner.url) if signed else owner.url
    import redis as sync_redis

    client = sync_redis.Redis.from_url(redis_url())
    client.set(KEY_PREFIX + replica_id, value, px=60_000)
    try:
        yield owner, f"{replica_id}-{'c' * 32}"
    finally:
        client.delete(KEY_PREFIX + replica_id)
        client.close()
        owner.sock.close()


def test_an_entry_not_signed_by_a_replica_gets_no_request(pair: list[str]) -> None:
    with fake_owner(signed=False) as (owner, session):
        answer = httpx2.post(f"{pair[0]}/mcp", json=_list(), headers={**AUTH, **ACCEPT, "mcp-session-id": session})
    assert owner.heads == []  # before: the owner got the request, master key and all
    assert (answer.status_code, answer.json()["error"]["message"]) == (404, "Session not found")


async def test_entries_verify_for_their_own_id_and_secret_only() -> None:
    me, real, moved, forged, foreign = (new_replica_id() for _ in range(5))
    url = "http://10.0.0.6:4000"
    entries = {
        KEY_PREFIX + real: entry(SECRET, real, url),
        KEY_PREFIX + moved: entry(SECRET, real, url),  # a real entry copied under another id
        KEY_PREFIX + forged: url,
        KEY_PREFIX + foreign: entry(forward_secret("another master key"), foreign, url),
    }
    registry = ReplicaRegistry(DictRedis(entries), me, "http://10.0.0.5:4000", SECRET)
    assert [await registry.url_of(rid) for rid in (real, moved, forged, foreign)] == [url, None, None, None]


async def test_without_a_master_key_nothing_is_forwarded_through_redis() -> None:
    async with replica_forwarding(redis_url(), "http://127.0.0.1:4000", None, master_key=None) as forwarder:
        assert forwarder is None


async def test_workers_without_a_master_key_forward_between_themselves_and_say_replicas_need_affinity(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "toolhub.mcp")
    url = "http://127.0.0.1:4001"
    async with replica_forwarding(redis_url(), url, str(tmp_path), master_key=None) as forwarder:
        assert isinstance(forwarder, Forwarder) and isinstance(forwarder.registry, WorkerRegistry)
    mine = [r.getMessage() for r in caplog.records if r.thread == threading.get_ident()]
    assert any("between this server's workers only" in m and "master_key" in m for m in mine), mine


class FlakyRedis(DictRedis):
    """Answers until `down` is set, then fails as an unreachable Redis does; counts the lookups it was asked."""

    def __init__(self, entries: dict[str, str]) -> None:
        super().__init__(entries)
        self.down = False
        self.asked = 0

    async def get(self, key: str) -> bytes | None:
        self.asked += 1
        if self.down:
            raise redis.exceptions.ConnectionError("Connection refused")
        return await super().get(key)


async def test_a_redis_outage_keeps_known_replicas_and_answers_503_for_others() -> None:
    known, unknown = new_replica_id(), new_replica_id()
    url = "http://10.0.0.6:4000"
    flaky = FlakyRedis({KEY_PREFIX + known: entry(SECRET, known, url)})
    registry = ReplicaRegistry(flaky, new_replica_id(), "http://10.0.0.5:4000", SECRET, ttl=0)  # never fresh
    assert await registry.url_of(known) == url
    flaky.down = True
    assert await registry.url_of(known) == url  # before: None, a 404 that ends a live session
    with pytest.raises(RegistryUnavailable):
        await registry.url_of(unknown)
    assert flaky.asked == 2  # the failure holds Redis off for a moment: the third lookup did not wait on it
    registry.forget(url)  # a connect to it failed
    with pytest.raises(RegistryUnavailable):
        await registry.url_of(known)


async def test_an_unavailable_registry_answers_a_retryable_json_rpc_503() -> None:
    registry = ReplicaRegistry(FlakyRedis({}), new_replica_id(), "http://10.0.0.5:4000", SECRET)
    registry.client.down = True
    forwarder = Forwarder(registry, forward_client())
    scope = {"type": "http", "method": "POST", "path": "/mcp",
             "headers": [(b"mcp-session-id", f"{new_replica_id()}-{'d' * 32}".encode())]}  # fmt: skip
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def nothing() -> Any:
        raise AssertionError("the body is not needed")

    target = await forwarder.target(scope, lambda session_id: False)
    assert target == UNAVAILABLE
    await forwarder.forward(target, scope, nothing, send, otherwise=send)  # type: ignore[arg-type]
    await forwarder.client.aclose()
    assert sent[0]["status"] == 503
    assert b'"code":-32000' in sent[1]["body"]


async def test_a_url_the_hop_cannot_use_gets_the_local_json_rpc_answer(pair: list[str]) -> None:
    replica_id = new_replica_id()
    client = redis_client(redis_url())
    await client.set(KEY_PREFIX + replica_id, entry(SECRET, replica_id, "http://fd00::1:4000"), px=30_000)
    try:
        async with httpx2.AsyncClient(headers=AUTH, timeout=10) as http:
            session = {**ACCEPT, "mcp-session-id": f"{replica_id}-{'e' * 32}"}
            answer = await http.post(f"{pair[0]}/mcp", json=_list(), headers=session)
    finally:
        await client.delete(KEY_PREFIX + replica_id)
        await client.aclose()
    assert (answer.status_code, answer.json()["error"]["message"]) == (404, "Session not found")  # before: a 500


def test_a_forwarded_answer_has_one_date_server_and_request_id(pair: list[str]) -> None:
    headers = {**AUTH, **ACCEPT, "connection": "keep-alive, x-hop-only", "x-hop-only": "1", "x-request-id": "abc-1"}
    with fake_owner() as (owner, session):
        answer = httpx2.post(f"{pair[0]}/mcp", json=_list(), headers={**headers, "mcp-session-id": session})
    names = [name.lower() for name, _ in answer.headers.raw]
    assert (names.count(b"date"), names.count(b"server"), names.count(b"x-request-id")) == (1, 1, 1)
    assert answer.headers["x-request-id"] == "abc-1"
    sent = owner.heads[0].lower()
    assert "x-hop-only" not in sent  # named in Connection: for this hop only
    assert sent.count("x-request-id: abc-1") == 1  # the owner logs the front's request id


def test_an_owner_dying_mid_stream_breaks_the_clients_connection(pair: list[str]) -> None:
    got: list[str] = []
    with fake_owner() as (owner, session), pytest.raises(httpx2.RemoteProtocolError):
        headers = {**AUTH, **ACCEPT, "mcp-session-id": session}
        with httpx2.stream("POST", f"{pair[0]}/mcp?mode=die", json=_list(), headers=headers, timeout=20) as stream:
            for line in stream.iter_lines():
                got.append(line)
                if line == "data: one":
                    owner.cut.set()
    assert got[:2] == ["event: message", "data: one"]  # before: no error, the stream seemed to end after these


def test_a_workers_directory_others_can_write_is_not_used(tmp_path: Path) -> None:
    tmp_path.chmod(0o777)
    registry = WorkerRegistry(tmp_path, new_replica_id(), "http://127.0.0.1:1234")

    async def run_briefly() -> str | None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(registry.run)
            await anyio.wait_all_tasks_blocked()
            tg.cancel_scope.cancel()
        return await registry.url_of(registry.replica_id)

    assert anyio.run(run_briefly) is None
    assert list(tmp_path.iterdir()) == []


def test_the_supervisors_workers_directory_is_private() -> None:
    from hub.mcp.forward.local import _private  # pyright: ignore[reportPrivateUsage]

    with tempfile.TemporaryDirectory() as directory:  # what hub/scale/supervisor.py makes (mkdtemp)
        assert _private(Path(directory))


@pytest.mark.parametrize("url", ["http://fd00::1:4000", "http://10.0.0.5:99999", "http://:4000"])
def test_a_replica_url_no_hop_could_use_is_a_config_error(url: str) -> None:
    from hub.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match="replica_url"):
        parse_config({"general_settings": {"replica_url": url}}, {})
    assert parse_config({"general_settings": {"replica_url": "http://[fd00::1]:4000"}}, {}).replica_url


@pytest.mark.parametrize("master", [True, False])
def test_workers_warn_of_a_loopback_replica_url_only_when_they_advertise_it_in_redis(
    master: bool, caplog: pytest.LogCaptureFixture
) -> None:
    from hub.cli import _check_replica_url  # pyright: ignore[reportPrivateUsage]
    from hub.config import parse_config

    general = {"redis_url": redis_url(), "replica_url": "http://127.0.0.1:4000"}
    config = parse_config({"general_settings": general | ({"master_key": "sk-m"} if master else {})}, {})
    caplog.set_level(logging.INFO, "toolhub")
    _check_replica_url(config)
    mine = [r.getMessage() for r in caplog.records if r.thread == threading.get_ident()]
    assert any("is a loopback address" in m for m in mine) is master, mine
    assert any("master_key (which signs the registry)" in m for m in mine) is not master, mine
