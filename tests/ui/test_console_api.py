"""The console's forms and its JSON proxy, driven through the whole app in process (no browser needed): what they
refuse, how, and what a virtual key scoped to some models and servers gets to see."""

from __future__ import annotations

import html
import json
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx2
import pytest
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from hub.accounts.auth import MASTER
from hub.ui.api import proxy
from hub.ui.session import Session
from hub.ui.web import read_form
from tests.ui.inprocess import ORIGIN, SERVERS, InProcessHub, console_login, hub_config, make_key

BIG = "99999999999999999999"  # over 64 bits: orjson reads it as 1e20 and refuses to write it


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx2.AsyncClient]:
    async with InProcessHub(hub_config(tmp_path, {})) as client:
        yield client


@pytest.fixture
async def tooled(tmp_path: Path) -> AsyncIterator[httpx2.AsyncClient]:
    """The hub with `mirror` (a tool taking an integer) and `broken` (a server that exits at once) as upstreams."""
    servers = {
        "mirror": {"transport": "stdio", "command": sys.executable, "args": [str(SERVERS / "mirror.py")]},
        "broken": {"transport": "stdio", "command": sys.executable, "args": ["-c", "raise SystemExit(3)"]},
    }
    async with InProcessHub(hub_config(tmp_path, servers)) as client:
        yield client


@pytest.mark.anyio
async def test_a_form_encoded_playground_request_is_refused_in_openais_shape_at_once(
    client: httpx2.AsyncClient,
) -> None:
    csrf = await console_login(client)
    body = json.dumps({"model": "chat", "messages": [{"role": "user", "content": "hi"}]})
    headers = {**ORIGIN, "x-csrf-token": csrf, "content-type": "application/x-www-form-urlencoded"}
    with anyio.fail_after(10):  # it waited for a body already read, until the client gave up
        response = await client.post("/ui/api/v1/chat/completions", content=body, headers=headers)
    assert response.status_code == 415
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "unsupported_media_type")


@pytest.mark.anyio
async def test_the_proxy_hands_a_body_already_read_to_the_api_again() -> None:
    received: list[bytes] = []

    async def api(scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        received.append(message.get("body", b""))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def browser() -> Message:
        if not received and not sent:
            sent.append(True)
            return {"type": "http.request", "body": b"a=1&csrf=x", "more_body": False}
        await anyio.sleep_forever()  # a client that waits for its answer: no disconnect to end a wait
        raise AssertionError

    sent: list[bool] = []
    headers = [(b"content-type", b"application/x-www-form-urlencoded")]
    scope: Scope = {"type": "http", "method": "POST", "path": "/ui/x", "query_string": b"", "headers": headers,
                    "app": api}  # fmt: skip
    request = Request(scope, browser)
    assert await read_form(request) == {"a": "1", "csrf": "x"}
    session = Session(id="s", key="sk", principal=MASTER, csrf="c", expires=0)
    with anyio.fail_after(5):
        await proxy(request, session, "/v1/x", browser, _discard)
    assert received == [b"a=1&csrf=x"]


async def _discard(message: Message) -> None:
    pass


@pytest.mark.anyio
async def test_a_client_that_leaves_while_its_playground_body_is_read_is_a_499_not_a_crash(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hub = InProcessHub(hub_config(tmp_path, {}))
    async with hub as client:
        csrf = await console_login(client)
        cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
        headers = [(b"host", b"127.0.0.1"), (b"origin", b"http://127.0.0.1"), (b"cookie", cookie.encode()),
                   (b"x-csrf-token", csrf.encode()), (b"content-type", b"application/json")]  # fmt: skip
        path = "/ui/api/v1/chat/completions"
        scope: Scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
                        "query_string": b"", "headers": headers, "client": ("10.0.0.7", 1234),
                        "server": ("127.0.0.1", 80)}  # fmt: skip
        messages = iter([{"type": "http.request", "body": b'{"model": ', "more_body": True}])
        sent: list[Message] = []

        async def receive() -> Message:
            return next(messages, {"type": "http.disconnect"})

        async def send(message: Message) -> None:
            sent.append(message)

        with anyio.fail_after(10):
            await hub.app(scope, receive, send)
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [499]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.anyio
async def test_an_integer_beyond_64_bits_reaches_the_tool_and_comes_back_exactly(tooled: httpx2.AsyncClient) -> None:
    csrf = await console_login(tooled)
    form = {"csrf": csrf, "name": "mirror__rows", "arg:max_rows": BIG}
    response = await tooled.post("/ui/mcp/call", data=form, headers={**ORIGIN, "hx-request": "true"})
    assert response.status_code == 200, response.text
    shown = html.unescape(response.text)
    assert f'"max_rows": {BIG}' in shown and "1e+20" not in shown
    assert "tool error" not in response.text


@pytest.mark.anyio
async def test_a_key_scoped_to_some_models_and_servers_sees_no_others_on_any_page(tooled: httpx2.AsyncClient) -> None:
    key = (await make_key(tooled, models=["chat"], mcp_servers=["mirror"]))["key"]
    await console_login(tooled, key)
    pages = {
        path: (await tooled.get(path)).text for path in ("/ui", "/ui/logs", "/ui/models", "/ui/mcp", "/ui/playground")
    }
    seen = {path: [word for word in ("hidden-model", "broken") if word in text] for path, text in pages.items()}
    assert seen == dict.fromkeys(pages, []), [line for line in pages["/ui"].splitlines() if "broken" in line]
    assert "mirror" in pages["/ui/mcp"] and "chat" in pages["/ui/logs"]
    tooled.cookies.clear()
    await console_login(tooled)  # the master key sees everything
    master = {path: (await tooled.get(path)).text for path in ("/ui", "/ui/logs")}
    assert "broken" in master["/ui"] and "hidden-model" in master["/ui/logs"]


@pytest.mark.anyio
async def test_an_oversized_form_is_refused_as_too_large(client: httpx2.AsyncClient) -> None:
    csrf = await console_login(client)
    form = {"csrf": csrf, "key_alias": "x" * (300 * 1024)}
    created = await client.post("/ui/keys/create", data=form, headers=ORIGIN)
    client.cookies.clear()
    login = await client.post("/ui/login", data={"key": "x" * (300 * 1024)}, headers=ORIGIN)
    assert (created.status_code, login.status_code) == (413, 413)
    assert "The form is too large" in created.text and "The form is too large" in login.text


@pytest.mark.anyio
async def test_logging_in_with_an_expired_key_says_it_expired_and_an_unknown_key_is_only_wrong(
    client: httpx2.AsyncClient,
) -> None:
    key = (await make_key(client, duration="0s"))["key"]
    expired = await client.post("/ui/login", data={"key": key}, headers=ORIGIN)
    unknown = await client.post("/ui/login", data={"key": "sk-no-such-key"}, headers=ORIGIN)
    assert (expired.status_code, unknown.status_code) == (401, 401)
    assert "This key expired at" in expired.text and "Wrong key" not in expired.text
    assert "Wrong key" in unknown.text and "expired" not in unknown.text
