"""Every admin endpoint's parameters probed with bad values over real loopback, on SQLite and PostgreSQL: a 400 in
OpenAI's error shape naming the parameter, never a 500, and nothing half-written; a failing database is a 503."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx2
import pytest

from hub.accounts.accounting import accounting_extension
from hub.accounts.keys import hash_key
from hub.app import create_app
from hub.config import Config, parse_config
from hub.storage import KeyRow, Store, StoreError, open_store
from tests.keys.conftest import MASTER_KEY, config_dict
from tests.support.servers import serve_app

HUGE = "99999999999999999999"


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


BAD_GENERATE = [
    ({"duration": "99999999999999y"}, "duration"),
    ({"budget_duration": "99999999999999y"}, "budget_duration"),
    ({"budget_duration": "0s"}, "budget_duration"),
    ({"duration": "9" * 5000 + "d"}, "duration"),
    ({"duration": "-5d"}, "duration"),
    ({"rpm_limit": 2**64}, "rpm_limit"),
    ({"tpm_limit": -1}, "tpm_limit"),
    ({"rpm_limit": "many"}, "rpm_limit"),
    ({"max_budget": "inf"}, "max_budget"),
    ({"max_budget": -1}, "max_budget"),
    ({"key_alias": "a\x00b"}, "key_alias"),
    ({"key_alias": ""}, "key_alias"),
    ({"models": ["gpt\x00"]}, "models.0"),
    ({"object_permission": {"mcp_servers": ["\x00"]}}, "object_permission.mcp_servers.0"),
    ({"key": "sk-abc\x00defgh"}, "key"),
    ({"key": "sk-" + "a" * 300}, "key"),
    ({"metadata": []}, "metadata"),
]

BAD_QUERIES = [
    ("/key/list", {"page": HUGE}, "page"),
    ("/key/list", {"page": "0"}, "page"),
    ("/key/list", {"page": "-3"}, "page"),
    ("/key/list", {"page": "1.5"}, "page"),
    ("/key/list", {"size": "0"}, "size"),
    ("/key/list", {"page_size": HUGE}, "page_size"),
    ("/key/list", {"key_alias": "a\x00"}, "key_alias"),
    ("/spend/logs", {"page": HUGE}, "page"),
    ("/spend/logs", {"page_size": "-1"}, "page_size"),
    ("/spend/logs", {"end_date": "nan"}, "end_date"),
    ("/spend/logs", {"start_date": "inf"}, "start_date"),
    ("/spend/logs", {"end_date": "10000-01-01"}, "end_date"),
    ("/spend/logs", {"end_date": "9999-12-31T25:00:00"}, "end_date"),
    ("/spend/logs", {"start_date": "yesterday"}, "start_date"),
    ("/spend/logs", {"model": "x\x00"}, "model"),
    ("/spend/daily", {"start_date": "1e999"}, "start_date"),
    ("/spend/daily", {"group_by": "team"}, "group_by"),
    ("/spend/tool_calls", {"limit": HUGE}, "limit"),
    ("/spend/tool_calls", {"limit": "0"}, "limit"),
]


def assert_bad_request(response: httpx2.Response, param: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
    assert error["message"]


@pytest.mark.parametrize(("body", "param"), BAD_GENERATE)
def test_a_bad_generate_is_a_400_naming_the_param_and_stores_nothing(
    admin: httpx2.Client, body: dict[str, Any], param: str
) -> None:
    assert_bad_request(admin.post("/key/generate", json=body), param)
    listed = admin.get("/key/list", params={"return_full_object": "true"})
    assert (listed.status_code, listed.json()["total_count"]) == (200, 0)


def test_metadata_too_deep_to_store_is_a_400_and_stores_nothing(admin: httpx2.Client) -> None:
    response = admin.post("/key/generate", json={"metadata": _nested(260)})
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"
    assert admin.get("/key/list").json()["total_count"] == 0


@pytest.mark.parametrize(("body", "param"), BAD_GENERATE[:12])
def test_a_bad_update_is_a_400_and_changes_nothing(admin: httpx2.Client, body: dict[str, Any], param: str) -> None:
    created = admin.post("/key/generate", json={"key_alias": "kept", "rpm_limit": 5}).json()
    before = admin.get("/key/info", params={"key": created["key"]}).json()["info"]
    assert_bad_request(admin.post("/key/update", json={"key": created["key"], **body}), param)
    assert admin.get("/key/info", params={"key": created["key"]}).json()["info"] == before


@pytest.mark.parametrize(("path", "params", "param"), BAD_QUERIES)
def test_a_bad_query_parameter_is_a_400_naming_it(
    admin: httpx2.Client, path: str, params: dict[str, str], param: str
) -> None:
    assert_bad_request(admin.get(path, params=params), param)


def test_far_but_valid_dates_and_pages_are_answered(admin: httpx2.Client) -> None:
    for path, params in [("/spend/logs", {"end_date": "9999-12-31"}), ("/spend/logs", {"start_date": "0001-01-01"}),
                         ("/spend/daily", {"end_date": "9999-12-31"}), ("/spend/logs", {"page": "1000000"}),
                         ("/key/list", {"page": "1000000", "size": "1000"})]:  # fmt: skip
        response = admin.get(path, params=params)
        assert response.status_code == 200, (path, params, response.text)


def test_bad_delete_requests_are_400s(admin: httpx2.Client) -> None:
    assert_bad_request(admin.post("/key/delete", json={"keys": ["sk-x"] * 1001}), "keys")
    assert_bad_request(admin.post("/key/delete", json={"key_aliases": ["a\x00"]}), "key_aliases.0")
    assert_bad_request(admin.post("/key/delete", json={}), "keys")


def test_a_key_stored_with_out_of_range_dates_still_lists_and_works(
    admin: httpx2.Client, gateway_url: str, database_url: str
) -> None:
    """Rows written before durations were bounded (expiry in the year 10^14) must not break /key/list or auth."""
    key = "sk-stored-before-the-fix"
    now = time.time()
    row = KeyRow(token_hash=hash_key(key), key_name="sk-...-fix", created_at=now, updated_at=now,
                 budget_duration="99999999999999y", expires=now + 99999999999999 * 365 * 86400)  # fmt: skip

    async def insert() -> None:
        store = open_store(database_url)
        await store.connect()
        try:
            await store.insert_key(row)
        finally:
            await store.aclose()

    anyio.run(insert)
    listed = admin.get("/key/list", params={"return_full_object": "true"})
    assert listed.status_code == 200, listed.text
    assert [k["expires"] for k in listed.json()["keys"]] == ["9999-12-31T23:59:59Z"]
    assert admin.get("/key/info", params={"key": key}).status_code == 200
    models = httpx2.get(f"{gateway_url}/v1/models", headers={"authorization": f"Bearer {key}"})
    assert models.status_code == 200, models.text


class OutageStore:
    """A real store that, while `down`, fails every call as a lost connection would."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.down = False

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name in ("connect", "migrate", "aclose", "url") or not callable(attr):
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                raise StoreError("connection refused (simulated outage)")
            return await attr(*args, **kwargs)

        return call


@pytest.fixture
def outage(upstream: str, database_url: str) -> Iterator[tuple[OutageStore, httpx2.Client]]:
    stores: list[OutageStore] = []

    def factory(config: Config) -> Store:
        stores.append(OutageStore(open_store(config.database_url)))
        return stores[-1]  # pyright: ignore[reportReturnType]

    from hub.accounts import keys_api, spend_api

    config = parse_config(config_dict(upstream, database_url), {})
    app = create_app(config, extensions=[accounting_extension(store_factory=factory)],
                     routes=[*keys_api.ROUTES, *spend_api.ROUTES])  # fmt: skip
    with serve_app(app) as url, httpx2.Client(base_url=url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as c:
        yield stores[0], c


def test_admin_endpoints_answer_503_while_the_database_is_down(outage: tuple[OutageStore, httpx2.Client]) -> None:
    store, admin = outage
    key = admin.post("/key/generate", json={"key_alias": "before"}).json()["key"]
    store.down = True
    calls = [admin.post("/key/generate", json={"key_alias": "during"}), admin.get("/spend/logs"),
             admin.get("/spend/daily"), admin.get("/spend/tool_calls"), admin.get("/key/list"),
             admin.get("/key/info", params={"key": key}), admin.post("/key/update", json={"key": key, "rpm_limit": 1}),
             admin.post("/key/block", json={"key": key}), admin.post("/key/delete", json={"keys": [key]})]  # fmt: skip
    for response in calls:
        assert response.status_code == 503, (response.request.url, response.text)
        assert response.json()["error"]["code"] == "database_unavailable"
    store.down = False
    listed = admin.get("/key/list", params={"return_full_object": "true"}).json()
    assert [(k["key_alias"], k["rpm_limit"], k["blocked"]) for k in listed["keys"]] == [("before", None, False)]
