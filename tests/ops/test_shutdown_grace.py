"""The end of `shutdown_grace_seconds` (hub/ops/shutdown.py): requests still running get an answer in their API's
shape, no traceback is logged and every request keeps its spend-log row (QA ops finding 6: uvicorn's plain-text 500
and a traceback each, streams cut without their final error event)."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
import yaml
from starlette.types import Receive, Scope, Send

from hub.middleware import EdgeMiddleware
from hub.ops.shutdown import CODE, MESSAGE, Drain
from tests.fakes.openai_upstream import API_KEY
from tests.fakes.responses_upstream import FakeResponses
from tests.support.servers import serve_app, toolhub_process

MASTER_KEY = "sk-toolhub-shutdown-grace"
HI = [{"role": "user", "content": "hi"}]
EXIT_ON_SIGTERM = -signal.SIGTERM  # uvicorn shuts down gracefully, then re-raises the signal it caught


@dataclass
class Answer:
    status: int
    content_type: str
    retry: str | None
    text: str


def ask(url: str, path: str, body: dict[str, Any], answers: dict[str, Answer], name: str,
        started: threading.Barrier) -> None:  # fmt: skip
    headers = {"Authorization": f"Bearer {MASTER_KEY}"}
    with httpx2.stream("POST", f"{url}{path}", json=body, headers=headers, timeout=30) as response:
        text = ""
        for piece in response.iter_text():  # raises if the stream is cut (incomplete chunked read)
            if not text and response.headers["content-type"].startswith("text/event-stream"):
                started.wait(10)
            text += piece
    answers[name] = Answer(response.status_code, response.headers["content-type"],
                           response.headers.get("x-should-retry"), text)  # fmt: skip


def events(text: str) -> list[str]:
    return [event for event in text.split("\n\n") if event]


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with serve_app(FakeResponses().app, graceful_timeout=1) as url:  # its slow-30 answers are not waited for
        yield url


def test_requests_running_when_the_grace_period_ends_get_their_apis_error(upstream: str, tmp_path: Path) -> None:
    database = tmp_path / "toolhub.db"
    params = {"api_base": f"{upstream}/v1", "api_key": API_KEY}
    models = [
        {"model_name": name, "litellm_params": {"model": f"openai/{name}", **params}} for name in ("slow-2", "slow-30")
    ]
    models.append(
        {
            "model_name": "native",
            "litellm_params": {"model": "openai/stalled", **params},
            "model_info": {"supported_endpoints": ["/v1/responses"]},
        }
    )  # forwarded as it is (passthrough)
    general = {"master_key": MASTER_KEY, "database_url": f"sqlite:///{database}", "shutdown_grace_seconds": 1}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"model_list": models, "general_settings": general}))
    requests = {  # slow-2 streams its first chunk after 2 s, then one every 2 s; slow-30 answers after 30 s
        "plain": ("/v1/chat/completions", {"model": "slow-30", "messages": HI}),
        "stream": ("/v1/chat/completions", {"model": "slow-2", "messages": HI, "stream": True}),
        "stream-unstarted": ("/v1/chat/completions", {"model": "slow-30", "messages": HI, "stream": True}),
        "messages": ("/v1/messages", {"model": "slow-30", "max_tokens": 10, "messages": HI}),
        "messages-stream": ("/v1/messages", {"model": "slow-2", "max_tokens": 10, "messages": HI, "stream": True}),
        "responses-stream": ("/v1/responses", {"model": "slow-2", "input": "hi", "stream": True}),
        "responses-native": ("/v1/responses", {"model": "native", "input": "hi", "stream": True}),
    }
    answers: dict[str, Answer] = {}
    started = threading.Barrier(5)  # the four streams have their first chunk (slow-2's at 2 s; the next comes at 4 s)
    with toolhub_process(config) as (url, proc):
        threads = [threading.Thread(target=ask, args=(url, *request, answers, name, started)) for name, request in
                   requests.items()]  # fmt: skip
        for thread in threads:
            thread.start()
        started.wait(10)
        proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        for thread in threads:
            thread.join(20)
        assert proc.wait(20) == EXIT_ON_SIGTERM
        assert time.monotonic() - signalled < 5
        log = proc.stderr.read().decode() if proc.stderr else ""

    assert set(answers) == set(requests), log
    for name in ("plain", "stream-unstarted"):
        answer = answers[name]
        assert (answer.status, answer.content_type, answer.retry) == (503, "application/json", "true")
        assert json.loads(answer.text)["error"]["code"] == CODE
    claude = answers["messages"]
    assert (claude.status, json.loads(claude.text)["error"]["type"]) == (529, "overloaded_error")

    chat = events(answers["stream"].text)
    assert json.loads(chat[0].removeprefix("data: "))["choices"][0]["delta"]["role"] == "assistant"
    assert json.loads(chat[-1].removeprefix("data: "))["error"]["code"] == CODE
    last = events(answers["messages-stream"].text)[-1].split("\n")
    assert last[0] == "event: error"
    assert json.loads(last[1].removeprefix("data: "))["error"]["type"] == "overloaded_error"
    for name in ("responses-stream", "responses-native"):
        sent = events(answers[name].text)
        numbers = [json.loads(e.split("\n")[1].removeprefix("data: "))["sequence_number"] for e in sent]
        assert sent[-1].startswith("event: error\n") and numbers == list(range(len(sent))), name

    assert "Traceback" not in log and "Exception in ASGI application" not in log and "Cancel " not in log, log
    assert "shutdown_grace_seconds (1.0) ran out: ending 7 requests" in log
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT model_alias, status_code, error FROM toolhub_spend_logs").fetchall()
    assert sorted(alias for alias, _, _ in rows) == ["native"] + ["slow-2"] * 3 + ["slow-30"] * 3
    assert {(status, error.split(";")[0]) for _, status, error in rows} == {(503, MESSAGE)}, rows  # not served: no 499


LOOPS: list[asyncio.AbstractEventLoop] = []
"""The loop of the server `sleeping` runs in, noted by each request it gets."""


async def sleeping(scope: Scope, receive: Receive, send: Send) -> None:
    """An app whose requests never end by themselves (`/sse` after one SSE event)."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["path"] == "/sse":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        await send({"type": "http.response.body", "body": b'data: {"n": 1}\n\n', "more_body": True})
    LOOPS.append(asyncio.get_running_loop())
    await anyio.sleep(60)


def ended(drain: Drain, url: str, path: str, headers: dict[str, str]) -> httpx2.Response:
    """`path` asked of the app while `drain` ends every request in flight (as at the end of the grace period)."""
    result: list[httpx2.Response] = []
    LOOPS.clear()
    thread = threading.Thread(target=lambda: result.append(httpx2.get(f"{url}{path}", headers=headers, timeout=10)))
    thread.start()
    deadline = time.monotonic() + 5
    while not LOOPS and time.monotonic() < deadline:
        time.sleep(0.01)
    LOOPS[0].call_soon_threadsafe(drain.end)
    thread.join(10)
    return result[0]


def test_a_browser_request_ended_by_the_shutdown_keeps_its_cors_and_request_id_headers() -> None:
    drain = Drain()
    with serve_app(EdgeMiddleware(sleeping, drain)) as url:
        response = ended(drain, url, "/v1/models", {"Origin": "https://chat.example", "x-request-id": "req-1"})
    assert response.status_code == 503 and response.json()["error"]["code"] == CODE
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["x-request-id"] == "req-1"


def test_an_mcp_request_gets_a_json_rpc_error_and_an_mcp_stream_just_ends() -> None:
    drain = Drain()
    with serve_app(EdgeMiddleware(sleeping, drain)) as url:
        refused = ended(drain, url, "/mcp", {})
        assert (refused.status_code, refused.json()["jsonrpc"], refused.json()["error"]["code"]) == (503, "2.0", -32000)
        streamed = ended(drain, url, "/sse", {})
    assert streamed.status_code == 200 and streamed.text == 'data: {"n": 1}\n\n'
