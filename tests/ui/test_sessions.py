"""Console sessions across two real `toolhub serve` processes on one database (SQLite and PostgreSQL): a login on one
is a session on the other, logout on either ends it on both; the database holds no usable key; failed logins are
limited per client address with a 429 page that says what to do."""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterator

import anyio
import httpx2
import pytest
import yaml

from hub.storage import open_store
from tests.support.servers import toolhub_process
from tests.ui.conftest import database_url

MASTER_KEY = "sk-toolhub-ui-sessions-master"
AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def two_hubs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str, str]]:
    """Two gateway processes on one database; yields (first URL, second URL, database URL). Only the last test logs
    in on the second process, where it makes failed logins."""
    tmp_path = tmp_path_factory.mktemp("sessions")
    with database_url(tmp_path, request.param) as db_url:
        config = {
            "model_list": [{"model_name": "chat", "litellm_params": {"model": "openai/x", "api_key": "k",
                                                                     "api_base": "http://127.0.0.1:9/v1"}}],
            "general_settings": {"master_key": MASTER_KEY, "database_url": db_url},
        }  # fmt: skip
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        with toolhub_process(path) as (first, _), toolhub_process(path) as (second, _):
            yield first, second, db_url


@contextlib.contextmanager
def _login(url: str, key: str) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=url, timeout=10) as client:
        response = client.post("/ui/login", data={"key": key}, headers={"origin": url})
        assert response.status_code == 303, response.text
        yield client


def _on(url: str, cookie: str) -> httpx2.Client:
    """A browser that got `cookie` from another process's login."""
    return httpx2.Client(base_url=url, timeout=10, cookies={"toolhub_ui": cookie})


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page) or re.search(r'data-csrf="([^"]+)"', page)
    assert match, page
    return match[1]


def test_a_login_on_one_process_works_on_the_other_and_logout_ends_it_on_both(two_hubs: tuple[str, str, str]) -> None:
    first, second, _ = two_hubs
    with _login(first, MASTER_KEY) as browser:
        cookie = browser.cookies["toolhub_ui"]
        with _on(second, cookie) as elsewhere:
            keys = elsewhere.get("/ui/keys")
            assert keys.status_code == 200 and "<h1>Keys</h1>" in keys.text
            token = _csrf(keys.text)
            out = elsewhere.post("/ui/logout", data={"csrf": token}, headers={"origin": second})
            assert out.status_code == 303 and out.headers["location"] == "/ui/login"
        for url in (first, second):
            with _on(url, cookie) as stale:
                gone = stale.get("/ui/keys")
                assert gone.status_code == 303 and gone.headers["location"] == "/ui/login"


def test_a_virtual_key_session_is_the_same_restricted_view_on_both(two_hubs: tuple[str, str, str]) -> None:
    first, second, _ = two_hubs
    made = httpx2.post(f"{first}/key/generate", json={"key_alias": "viewer"}, headers=AUTH, timeout=10)
    key = made.json()["key"]
    with _login(first, key) as browser, _on(second, browser.cookies["toolhub_ui"]) as elsewhere:
        page = elsewhere.get("/ui/keys")
        assert page.status_code == 200 and "<h1>Your key</h1>" in page.text and "viewer" in page.text
        blocked = httpx2.post(f"{second}/key/block", json={"key": key}, headers=AUTH, timeout=10)
        assert blocked.status_code == 200
        for _ in range(50):  # each process trusts what it read of a key for key_cache_seconds (5 s)
            if elsewhere.get("/ui/keys").status_code == 303:
                break
            anyio.run(anyio.sleep, 0.2)
        assert elsewhere.get("/ui/keys").headers["location"] == "/ui/login"


def test_the_database_holds_neither_the_key_nor_the_session_id(two_hubs: tuple[str, str, str]) -> None:
    first, _, db_url = two_hubs
    with _login(first, MASTER_KEY) as browser:
        sid = browser.cookies["toolhub_ui"].split(".")[0]
        rows = anyio.run(_sessions, db_url)
    assert hashlib.sha256(sid.encode()).hexdigest() in {row["id_hash"] for row in rows}
    assert MASTER_KEY not in str(rows) and sid not in str(rows)


async def _sessions(db_url: str) -> list[dict[str, object]]:
    store = open_store(db_url)
    await store.connect()
    try:
        rows = await store.fetch("SELECT * FROM toolhub_ui_sessions", [])
        return [dict(r) for r in rows]
    finally:
        await store.aclose()


def test_ten_failed_logins_a_minute_get_a_429_page_even_for_the_right_key(two_hubs: tuple[str, str, str]) -> None:
    _, second, _ = two_hubs
    with httpx2.Client(base_url=second, timeout=10, headers={"origin": second}) as client:
        for _ in range(10):
            wrong = client.post("/ui/login", data={"key": "sk-guess"})
            assert wrong.status_code == 401 and "Wrong key" in wrong.text
        refused = client.post("/ui/login", data={"key": MASTER_KEY})
    assert refused.status_code == 429 and 0 < int(refused.headers["retry-after"]) <= 60
    assert "Too many failed logins from your address: wait" in refused.text
    assert "toolhub_ui" not in refused.headers.get("set-cookie", "")
