"""A real PostgreSQL outage under the admin API: the gateway reaches PostgreSQL through a TCP proxy that the test cuts.
`/key/*` and `/spend/*` answer 503 `database_unavailable` in OpenAI's shape, and nothing is half-written."""

from __future__ import annotations

from urllib.parse import urlsplit

import anyio
import httpx2
import pytest

from hub.config import parse_config
from hub.server import build_app
from tests.keys.conftest import MASTER_KEY, config_dict
from tests.storage.conftest import create_schema, drop_schema, postgres_url_or_skip
from tests.storage.test_postgres_outage import CuttableProxy, through
from tests.support.servers import serve_app

pytestmark = pytest.mark.anyio


async def test_admin_endpoints_answer_503_during_a_real_postgres_outage(upstream: str) -> None:
    url = postgres_url_or_skip()
    target = urlsplit(url)
    schema = await create_schema(url)
    try:
        async with CuttableProxy((target.hostname or "127.0.0.1", target.port or 5432)).running() as proxy:
            config = parse_config(config_dict(upstream, f"{through(url, proxy.port)}?search_path={schema}"), {})
            server = serve_app(build_app(config))
            # started from a worker thread: the gateway connects through the proxy, which runs on this event loop
            base = await anyio.to_thread.run_sync(server.__enter__)
            try:
                headers = {"authorization": f"Bearer {MASTER_KEY}"}
                async with httpx2.AsyncClient(base_url=base, headers=headers, timeout=30) as admin:
                    with anyio.fail_after(60):
                        await _refused_while_down_then_served(admin, proxy)
            finally:
                await anyio.to_thread.run_sync(server.__exit__, None, None, None)
    finally:
        await drop_schema(url, schema)


async def _refused_while_down_then_served(admin: httpx2.AsyncClient, proxy: CuttableProxy) -> None:
    assert (await admin.post("/key/generate", json={"key_alias": "before"})).status_code == 200
    await proxy.cut()
    for call in (admin.post("/key/generate", json={"key_alias": "during"}), admin.get("/spend/logs"),
                 admin.get("/key/list"), admin.get("/spend/daily")):  # fmt: skip
        response = await call
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "database_unavailable"
    proxy.restore()
    listed = await admin.get("/key/list", params={"return_full_object": "true"})  # the pool reconnects
    assert listed.status_code == 200, listed.text
    assert [k["key_alias"] for k in listed.json()["keys"]] == ["before"]
