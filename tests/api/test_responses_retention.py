"""Retention of stored responses (`responses_retention_period`), on both storage backends."""

from __future__ import annotations

import contextlib
import time
from types import SimpleNamespace
from typing import Any

import anyio
import pytest

from hub.accounts.auth import Principal
from hub.api.responses import owners, retention, upstream
from hub.errors import NotFound
from hub.storage import Store, StoredResponse
from tests.storage.conftest import backend, store

_ = (backend, store)


def row(response_id: str, created_at: float) -> StoredResponse:
    return StoredResponse(response_id, "key-a", created_at, {"id": response_id, "output": []}, [], [])


@pytest.mark.anyio
async def test_a_pass_deletes_only_responses_older_than_the_period(store: Store) -> None:
    now = time.time()
    await store.save_response(row("resp_old", now - 7200))
    await store.save_response(row("resp_new", now - 60))
    assert await retention.purge(store, 3600, now) is True
    assert await store.get_response("resp_old") is None
    assert await store.get_response("resp_new") is not None


@pytest.mark.anyio
async def test_a_purged_upstream_response_keeps_its_owner_and_gets_a_404_not_a_forward(store: Store) -> None:
    now = time.time()
    await store.save_response(row("resp_upstream1", now - 7200))
    for _ in range(2):  # a response saved again (a stream's final event and a retry) records nothing twice
        await owners.record(store, "key-a", "resp_upstream1", ["msg_upstream1"])
    assert await retention.purge(store, 3600, now) is True
    assert await owners.find(store, "msg_upstream1") == owners.Owner("key-a", "resp_upstream1")
    with pytest.raises(NotFound):
        await upstream.previous(store, Principal(key_id="key-a"), "resp_upstream1")
    assert await upstream.previous(store, Principal(key_id="key-a"), "resp_never_seen") is None


@pytest.mark.anyio
async def test_the_background_task_runs_passes_while_the_app_serves(store: Store) -> None:
    await store.save_response(row("resp_old", time.time() - 7200))
    async with retention.running(store, 3600, interval=0.01, first_delay=0):
        for _ in range(500):  # bounded: 5 s
            if await store.get_response("resp_old") is None:
                break
            await anyio.sleep(0.01)
    assert await store.get_response("resp_old") is None


@pytest.mark.anyio
async def test_a_failing_database_is_logged_and_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    from hub.storage import StoreError

    class Broken:
        async def delete_responses_before(self, created_before: float) -> None:
            raise StoreError("database is down")

    broken: Any = Broken()
    assert await retention.purge(broken, 60) is False
    assert "stored-response retention failed" in caplog.text


def test_the_extension_runs_only_with_a_period_and_a_database() -> None:
    def state(period: float | None, store: object) -> Any:
        return SimpleNamespace(config=SimpleNamespace(responses_retention=period), extras={"store": store})

    assert isinstance(retention.responses_retention(state(None, object())), contextlib.nullcontext)
    assert isinstance(retention.responses_retention(state(60.0, None)), contextlib.nullcontext)
    assert not isinstance(retention.responses_retention(state(60.0, object())), contextlib.nullcontext)
