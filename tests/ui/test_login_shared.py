"""The console's login limit with two gateways on one database (SQLite file, PostgreSQL schema), as `serve --workers`
or replicas behind a load balancer run: failed logins on one count on the other. Driven through both whole apps in
process, and once over real sockets."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest

from hub.config import parse_config
from hub.server import build_app
from hub.ui.session import LOGIN_FAILURES
from tests.storage.conftest import create_schema, drop_schema, postgres_url_or_skip
from tests.support.servers import serve_app

pytestmark = pytest.mark.anyio
MASTER_KEY = "sk-shared-limit-master"
Hubs = tuple[httpx2.AsyncClient, httpx2.AsyncClient]


@contextlib.asynccontextmanager
async def database(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'hub.db'}"
        return
    url = postgres_url_or_skip()
    schema = await create_schema(url)
    try:
        yield f"{url}?search_path={schema}"
    finally:
        await drop_schema(url, schema)


@contextlib.asynccontextmanager
async def gateway(database_url: str) -> AsyncIterator[httpx2.AsyncClient]:
    model = {"model": "openai/x", "api_key": "k", "api_base": "http://127.0.0.1:9/v1"}
    settings = {"master_key": MASTER_KEY, "database_url": database_url}
    app = build_app(parse_config({"model_list": [{"model_name": "chat", "litellm_params": model}],
                                  "general_settings": settings}, {}))  # fmt: skip
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app, client=("10.0.0.7", 1234), raise_app_exceptions=False)
        async with httpx2.AsyncClient(transport=transport, base_url="http://hub") as client:
            yield client


@pytest.fixture(params=["sqlite", "postgres"])
async def hubs(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Hubs]:
    async with database(request.param, tmp_path) as url, gateway(url) as first, gateway(url) as second:
        yield first, second


async def _login(client: httpx2.AsyncClient, key: str) -> httpx2.Response:
    response = await client.post("/ui/login", data={"key": key}, headers={"origin": "http://hub"})
    client.cookies.clear()
    return response


async def test_failed_logins_on_one_gateway_count_on_the_other(hubs: Hubs) -> None:
    first, second = hubs
    codes = [(await _login(first, f"sk-guess-{i}")).status_code for i in range(LOGIN_FAILURES)]
    refused = await _login(second, MASTER_KEY)
    assert codes == [401] * LOGIN_FAILURES
    assert refused.status_code == 429 and 0 < int(refused.headers["retry-after"]) <= 60
    assert "Too many failed logins from your address: wait" in refused.text
    assert (await _login(first, "sk-guess-more")).status_code == 429


async def test_a_success_on_one_gateway_takes_back_only_its_own_attempt(hubs: Hubs) -> None:
    first, second = hubs
    codes = [(await _login(first, f"sk-guess-{i}")).status_code for i in range(LOGIN_FAILURES - 1)]
    codes += [(await _login(second, key)).status_code for key in (MASTER_KEY, "sk-guess-again")]
    codes += [(await _login(side, MASTER_KEY)).status_code for side in (second, first)]
    assert codes == [401] * (LOGIN_FAILURES - 1) + [303, 401, 429, 429]


def test_two_gateways_on_one_database_over_loopback_share_the_limit(tmp_path: Path) -> None:
    """The same over real sockets: two servers on one SQLite file, a client at 127.0.0.1."""
    model = {"model": "openai/x", "api_key": "k", "api_base": "http://127.0.0.1:9/v1"}
    settings = {"master_key": MASTER_KEY, "database_url": f"sqlite:///{tmp_path / 'hub.db'}"}
    config = {"model_list": [{"model_name": "chat", "litellm_params": model}], "general_settings": settings}
    with serve_app(build_app(parse_config(config, {}))) as one, serve_app(build_app(parse_config(config, {}))) as two:

        def login(url: str, key: str) -> int:
            with httpx2.Client(base_url=url, timeout=20) as client:
                return client.post("/ui/login", data={"key": key}, headers={"origin": url}).status_code

        codes = [login(one, f"sk-guess-{i}") for i in range(LOGIN_FAILURES)]
        assert codes + [login(two, MASTER_KEY)] == [401] * LOGIN_FAILURES + [429]
