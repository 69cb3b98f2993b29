"""The console's login limit and cookie checks, driven through the whole app in process (no browser needed)."""

from __future__ import annotations

import collections
import hashlib
import hmac
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx2
import pytest

from hub.accounts.auth import MASTER
from hub.config import parse_config
from hub.server import build_app
from hub.ui.login import counted_address
from hub.ui.session import _ADDRESSES, LOGIN_FAILURES, LoginThrottle, Sealer, Sessions

MASTER_KEY = "sk-limits-master"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx2.AsyncClient]:
    model = {"model": "openai/x", "api_key": "k", "api_base": "http://127.0.0.1:9/v1"}
    settings = {"master_key": MASTER_KEY, "database_url": f"sqlite:///{tmp_path / 'hub.db'}"}
    config = {"model_list": [{"model_name": "chat", "litellm_params": model}], "general_settings": settings}
    app = build_app(parse_config(config, {}))
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app, client=("10.0.0.7", 1234), raise_app_exceptions=False)
        async with httpx2.AsyncClient(transport=transport, base_url="http://hub") as client:
            yield client


async def _login(client: httpx2.AsyncClient, key: str) -> int:
    response = await client.post("/ui/login", data={"key": key}, headers={"origin": "http://hub"})
    client.cookies.clear()
    return response.status_code


@pytest.mark.anyio
async def test_concurrent_wrong_keys_from_one_address_get_no_more_than_the_limit_of_tries(
    client: httpx2.AsyncClient,
) -> None:
    codes: collections.Counter[int] = collections.Counter()

    async def guess(i: int) -> None:
        codes[await _login(client, f"sk-guess-{i}")] += 1

    async with anyio.create_task_group() as tg:
        for i in range(60):
            tg.start_soon(guess, i)
    assert codes == {401: LOGIN_FAILURES, 429: 60 - LOGIN_FAILURES}
    assert await _login(client, MASTER_KEY) == 429  # even the right key waits: the address used up its tries


@pytest.mark.anyio
async def test_a_successful_login_does_not_wipe_the_addresses_failed_guesses(client: httpx2.AsyncClient) -> None:
    codes = [await _login(client, f"sk-guess-{i}") for i in range(LOGIN_FAILURES - 1)]
    codes.append(await _login(client, MASTER_KEY))
    codes += [await _login(client, f"sk-guess-again-{i}") for i in range(2)]
    assert codes == [401] * (LOGIN_FAILURES - 1) + [303, 401, 429]


@pytest.mark.anyio
async def test_a_cookie_with_a_non_ascii_signature_is_no_session_and_no_crash(client: httpx2.AsyncClient) -> None:
    cookie = "toolhub_ui=a.9999999999.\xe9".encode("latin-1")
    for path in ("/ui", "/ui/login"):
        response = await client.get(path, headers=[(b"cookie", cookie)])
        assert response.status_code in (200, 303), path
    assert await Sessions(b"k" * 32).get("abc.9999999999.\u00e9") is None


def test_waiting_stores_nothing_so_the_address_bound_holds() -> None:
    throttle = LoginThrottle()
    for i in range(_ADDRESSES + 500):
        address = f"2001:db8::{i:x}"
        assert throttle.wait(address, 0.0) == 0
        throttle.failed(address, 0.0)
    assert len(throttle._failures) == _ADDRESSES  # pyright: ignore[reportPrivateUsage]
    assert throttle.wait("10.9.9.9", 0.0) == 0 and "10.9.9.9" not in throttle._failures  # pyright: ignore[reportPrivateUsage]


def test_an_attempt_counts_before_the_key_is_checked_and_success_takes_back_only_itself() -> None:
    throttle = LoginThrottle(limit=3, window=60)
    assert [throttle.attempt("10.0.0.1", t) for t in (0, 1, 2)] == [0, 0, 0]
    assert throttle.attempt("10.0.0.1", 3) == 57  # refused, and not counted
    throttle.succeeded("10.0.0.1", 2)
    assert throttle.attempt("10.0.0.1", 4) == 0 and throttle.attempt("10.0.0.1", 5) == 55
    assert throttle.attempt("10.0.0.1", 60.5) == 0  # the first attempt left the window


@pytest.mark.anyio
async def test_cookies_are_signed_with_a_subkey_not_the_sealing_root_secret() -> None:
    secret = b"s" * 32
    _, cookie = await Sessions(secret).create("sk-master", MASTER)
    sid, expiry, signature = cookie.split(".")
    root_signed = hmac.new(secret, f"{sid}.{expiry}".encode(), hashlib.sha256).hexdigest()
    subkey = hmac.new(secret, b"cookie-sign", hashlib.sha256).digest()
    assert signature != root_signed
    assert signature == hmac.new(subkey, f"{sid}.{expiry}".encode(), hashlib.sha256).hexdigest()
    assert Sealer(secret).open(Sealer(secret).seal("x")) == "x"


def test_failed_logins_are_counted_per_ipv4_address_and_per_ipv6_slash_64() -> None:
    assert counted_address("2001:db8:1:2:aaaa::1") == counted_address("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert counted_address("2001:db8:1:3::1") == "2001:db8:1:3::/64"
    assert (counted_address("10.0.0.7"), counted_address("10.0.0.8")) == ("10.0.0.7", "10.0.0.8")
    assert counted_address("::ffff:10.0.0.7") == "10.0.0.7"  # an IPv4 client on a dual-stack socket
    assert counted_address("testclient") == "testclient"


@pytest.mark.anyio
async def test_guesses_from_one_ipv6_slash_64_share_one_limit(tmp_path: Path) -> None:
    model = {"model": "openai/x", "api_key": "k", "api_base": "http://127.0.0.1:9/v1"}
    settings = {"master_key": MASTER_KEY, "database_url": f"sqlite:///{tmp_path / 'hub.db'}"}
    app = build_app(parse_config({"model_list": [{"model_name": "chat", "litellm_params": model}],
                                  "general_settings": settings}, {}))  # fmt: skip
    codes = []
    async with app.router.lifespan_context(app):
        for i in range(LOGIN_FAILURES + 1):  # each guess from another address of the same /64
            transport = httpx2.ASGITransport(app=app, client=(f"2001:db8::{i + 1:x}", 1234))
            async with httpx2.AsyncClient(transport=transport, base_url="http://hub") as client:
                codes.append(await _login(client, f"sk-guess-{i}"))
    assert codes == [401] * LOGIN_FAILURES + [429]
