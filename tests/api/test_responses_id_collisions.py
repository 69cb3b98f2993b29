"""Passthrough `/v1/responses` when an upstream hands out an id Toolhub already has: two upstreams counting the same
ids (`resp_fake0001`, ...), or one restarted. The client gets the answer; the id stays with its first owner."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import httpx2
import openai
import pytest
from starlette.applications import Starlette

from hub.accounts.usage import UsageRecord
from hub.api.responses import passthrough
from hub.config import parse_config
from hub.server import build_app
from hub.storage import StoredResponse, StoreError
from tests.api.test_responses_passthrough import entry, opted_in
from tests.fakes.responses_upstream import FakeResponses
from tests.support.servers import serve_app

MASTER_KEY = "sk-toolhub-collisions-test"


@dataclasses.dataclass
class Gateway:
    url: str
    app: Starlette


@pytest.fixture
def gateway(tmp_path: Any) -> Iterator[Gateway]:
    """A gateway over two fresh fake upstreams that each count their ids from 1: `a` and `b`."""
    first, second = FakeResponses(), FakeResponses()
    with serve_app(first.app) as one, serve_app(second.app) as two:
        settings = {"master_key": MASTER_KEY, "database_url": f"sqlite:///{tmp_path / 'toolhub.db'}"}
        raw = {"model_list": [entry("a", "text", one), entry("b", "text", two)], "general_settings": settings}
        app = build_app(opted_in(parse_config(raw, {}), "a", "b"))
        with serve_app(app) as url:
            yield Gateway(url, app)


def sdk(url: str, key: str = MASTER_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=20)


def new_key(url: str) -> str:
    made = httpx2.post(f"{url}/key/generate", json={}, headers={"Authorization": f"Bearer {MASTER_KEY}"})
    return made.json()["key"]


def ask(client: openai.OpenAI, model: str, text: str, stream: bool) -> tuple[str, str, list[str]]:
    """The response's id and text, and the stream's event types (none when not streamed)."""
    if not stream:
        response = client.responses.create(model=model, input=text)
        return response.id, response.output_text, []
    with client.responses.stream(model=model, input=text) as events:
        kinds = [event.type for event in events]
        final = events.get_final_response()
    return final.id, final.output_text, kinds


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("same_key", [False, True])
def test_a_colliding_id_is_answered_and_stays_with_its_first_owner(
    gateway: Gateway, stream: bool, same_key: bool, caplog: pytest.LogCaptureFixture
) -> None:
    with sdk(gateway.url) as owner, sdk(gateway.url, MASTER_KEY if same_key else new_key(gateway.url)) as later:
        first, _, _ = ask(owner, "a", "mine", False)
        with caplog.at_level(logging.WARNING, "toolhub.responses"):
            second, text, kinds = ask(later, "b", "theirs", stream)
        assert second == first and text == "You said: theirs"
        assert kinds[-1:] == ([] if not stream else ["response.completed"])
        assert owner.responses.retrieve(first).output_text == "You said: mine"  # not overwritten
        if not same_key:
            with pytest.raises(openai.NotFoundError):
                later.responses.retrieve(first)
            with pytest.raises(openai.NotFoundError):
                later.responses.create(model="b", previous_response_id=first, input="go on")
    assert f"b: the upstream's response id {first} is one Toolhub already has" in caplog.text


def test_an_id_deleted_by_its_owner_is_not_stored_for_another_key(gateway: Gateway) -> None:
    with sdk(gateway.url) as owner, sdk(gateway.url, new_key(gateway.url)) as other:
        first, _, _ = ask(owner, "a", "mine", False)
        owner.responses.delete(first)
        second, text, _ = ask(other, "b", "theirs", False)
        assert second == first and text == "You said: theirs"
        with pytest.raises(openai.NotFoundError):
            other.responses.retrieve(second)


class _Down:
    """The gateway's store with its writes of responses failing, as when the database is down."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def save_response(self, row: StoredResponse) -> None:
        raise StoreError("SQLite: database is locked")


@pytest.mark.parametrize("stream", [False, True])
def test_a_database_that_cannot_store_does_not_cost_the_answer(
    gateway: Gateway, stream: bool, caplog: pytest.LogCaptureFixture
) -> None:
    extras = gateway.app.state.hub.extras
    extras["store"] = _Down(extras["store"])
    try:
        with sdk(gateway.url) as client, caplog.at_level(logging.WARNING, "toolhub.responses"):
            ident, text, kinds = ask(client, "a", "unkept", stream)
            assert text == "You said: unkept" and kinds[-1:] == ([] if not stream else ["response.completed"])
            with pytest.raises(openai.NotFoundError):
                client.responses.retrieve(ident)
    finally:
        extras["store"] = extras["store"].store
    assert f"a: the upstream's response {ident} could not be stored" in caplog.text
    assert spend_statuses(gateway.url, "a") == ["success"]


def spend_statuses(url: str, alias: str) -> list[str]:
    with httpx2.Client(base_url=url, headers={"Authorization": f"Bearer {MASTER_KEY}"}) as admin:
        deadline = time.monotonic() + 30  # the usage writer stores in the background
        while not (rows := admin.get("/spend/logs", params={"model": alias}).json()["data"]):
            assert time.monotonic() < deadline, "the request's spend log was not stored within 30 s"
            time.sleep(0.05)
    return [row["status"] for row in rows]


@pytest.mark.anyio
async def test_a_stream_cut_by_a_bug_is_logged_as_failed_not_as_answered() -> None:
    records: list[UsageRecord] = []
    state: Any = SimpleNamespace(usage=SimpleNamespace(record=records.append))
    record = UsageRecord("req", None, "a", "text", "openai", 0, True, 0.0)

    async def events() -> AsyncIterator[tuple[str, bytes]]:
        yield "response.created", b'{"type": "response.created"}'
        raise RuntimeError("a bug")

    call: Any = object.__new__(passthrough._Forward)  # pyright: ignore[reportPrivateUsage]
    relay = call._relay(events(), contextlib.AsyncExitStack(), state, record, time.perf_counter())
    with pytest.raises(RuntimeError):
        async for _ in relay:
            pass
    assert [(r.status_code, r.error) for r in records] == [(500, "RuntimeError: a bug")]


@pytest.mark.parametrize("data", [b"not json", b"[]", b'{"type": "response.completed", "response": null}'])
def test_a_terminal_event_without_a_readable_response_carries_none(data: bytes) -> None:
    assert passthrough._response_of(data) == {}  # pyright: ignore[reportPrivateUsage]
