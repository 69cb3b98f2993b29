"""A real PostgreSQL outage: the store reaches the server through a TCP proxy on 127.0.0.1 that the test cuts (every
connection dropped, new ones refused) and restores, while usage records keep arriving. None may be lost or doubled."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import anyio
import pytest
from anyio.abc import SocketStream

from hub.storage.postgres import PostgresStore
from hub.storage.writer import UsageWriter
from tests.storage.conftest import create_schema, drop_schema, postgres_url_or_skip
from tests.storage.test_writer import expected, record, stored_request_ids

pytestmark = pytest.mark.anyio


class CuttableProxy:
    """Relays TCP connections to `target`; `cut()` drops them all and refuses new ones until `restore()`."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.up = True
        self.port = 0
        self._streams: set[SocketStream] = set()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[CuttableProxy]:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, self._relay)
            yield self
            tg.cancel_scope.cancel()

    async def _relay(self, client: SocketStream) -> None:
        if not self.up:
            await client.aclose()
            return
        server = await anyio.connect_tcp(*self.target)
        self._streams |= {client, server}
        async with anyio.create_task_group() as pumps:
            pumps.start_soon(self._pump, client, server)
            pumps.start_soon(self._pump, server, client)

    async def _pump(self, source: SocketStream, sink: SocketStream) -> None:
        with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            async for data in source:
                await sink.send(data)
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            await sink.aclose()

    async def cut(self) -> None:
        self.up = False
        streams, self._streams = self._streams, set()
        for stream in streams:
            await stream.aclose()

    def restore(self) -> None:
        self.up = True


def through(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


async def test_records_survive_a_postgres_outage_during_traffic(tmp_path: Path) -> None:
    url = postgres_url_or_skip()
    target = urlsplit(url)
    schema = await create_schema(url)
    try:
        async with CuttableProxy((target.hostname or "127.0.0.1", target.port or 5432)).running() as proxy:
            store = PostgresStore(through(url, proxy.port), schema=schema)
            await store.connect()
            await store.migrate()
            writer = UsageWriter(store, tmp_path / "spill.jsonl", spill_after_failures=2, retry_max=0.05)
            with anyio.fail_after(60):
                for n in range(100):
                    writer.record(record(n))
                assert await writer.flush()
                await proxy.cut()
                for n in range(100, 200):
                    writer.record(record(n))
                assert not await writer.flush()  # kept for retry
                for n in range(200, 300):
                    writer.record(record(n))
                assert not await writer.flush()  # spilled to the local file
                assert (tmp_path / "spill.jsonl").exists()
                proxy.restore()
                for n in range(300, 400):
                    writer.record(record(n))
                assert await writer.flush()  # writes the queue, then replays the spill file
                await writer.aclose()
                stored = await stored_request_ids(store)
            await store.aclose()
        assert stored == expected(400)  # every record once: none lost, none doubled
    finally:
        await drop_schema(url, schema)
