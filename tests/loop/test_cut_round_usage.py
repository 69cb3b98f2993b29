"""A tool loop cut while a model round is still running (the client left) charges that round: the upstream bills what
it took and generated, though it never reported the usage. The round is estimated as the relay estimates a plain
stream cut short (~4 characters a token, the prompt from the messages' JSON), added to the finished rounds' real usage,
and the request's row says "usage estimated", streamed or not (QA scale #2)."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Message

from hub.accounts.auth import MASTER
from hub.config import parse_config
from hub.loop.plan import JSON, plan_tool_loop
from hub.loop.run import LoopObserver, LoopSettings
from hub.loop.stream import KeepAliveStreamingResponse, stream_with_tools
from hub.ops import shutdown
from hub.server import build_app
from providers.base import ChatRequest, Deployment
from tests.fakes.scripted import FakeHub, ScriptedProvider
from tests.loop.conftest import MASTER_KEY, TOOL_SERVER
from tests.support.hub import wait_for_tools
from tests.support.servers import serve_app

ROUND_ONE = {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21}
"""What the upstream reports for the round that calls the tool; the round after it never reports (it is cut)."""
AUX = {"type": "mcp", "server_label": "aux", "require_approval": "never"}
ASK = [{"role": "user", "content": "Echo, then tell me a long story."}]
DEPLOYMENT = Deployment(provider="openai", model="scripted", api_base="http://unused")


def _echo(body: dict[str, Any]) -> str:
    return next(t["function"]["name"] for t in body["tools"] if t["function"]["name"].endswith("echo"))


def _chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
    choices = [{"index": 0, "delta": delta, "finish_reason": finish}]
    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": choices, **extra}
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


async def _first_round(body: dict[str, Any]) -> AsyncIterator[bytes]:
    call = {"index": 0, "id": "call_1", "type": "function",
            "function": {"name": _echo(body), "arguments": '{"text": "hi"}'}}  # fmt: skip
    yield _chunk({"role": "assistant", "tool_calls": [call]})
    yield _chunk({}, "tool_calls")
    yield b"data: " + orjson.dumps({"id": "c1", "object": "chat.completion.chunk", "choices": [],
                                    "usage": ROUND_ONE}) + b"\n\n"  # fmt: skip
    yield b"data: [DONE]\n\n"


async def _slow_answer() -> AsyncIterator[bytes]:
    """A long answer, slowly: the client leaves long before its end (and its usage)."""
    yield _chunk({"role": "assistant", "content": ""})
    for _ in range(2000):
        await anyio.sleep(0.01)
        yield _chunk({"content": "word "})


async def chat(request: Request) -> Response:
    body = await request.json()
    answered = any(m.get("role") == "tool" for m in body["messages"])
    if body.get("stream"):
        return StreamingResponse(_slow_answer() if answered else _first_round(body), media_type="text/event-stream")
    if answered:
        await anyio.sleep(30)  # the client leaves first
    call = {"id": "call_1", "type": "function", "function": {"name": _echo(body), "arguments": '{"text": "hi"}'}}
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    choices = [{"index": 0, "message": message, "finish_reason": "tool_calls"}]
    return JSONResponse({"id": "c1", "object": "chat.completion", "created": 1, "model": "m", "choices": choices,
                         "usage": ROUND_ONE})  # fmt: skip


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp: Path = tmp_path_factory.mktemp("cut-round")
    with serve_app(Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])) as upstream:
        model = {"model_name": "talker", "litellm_params": {"model": "openai/talker", "api_base": f"{upstream}/v1",
                                                            "api_key": "sk-fake"}}  # fmt: skip
        server = {"transport": "stdio", "command": sys.executable, "args": [TOOL_SERVER], "call_timeout": 60}
        config = {
            "model_list": [model],
            "general_settings": {"master_key": MASTER_KEY, "database_url": f"sqlite:///{tmp / 'hub.db'}"},
            "mcp_servers": {"aux": server},
        }
        with serve_app(build_app(parse_config(config, {}))) as url:
            wait_for_tools(url, {"aux"}, MASTER_KEY)
            yield url


AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}


def _row(url: str, request_id: str) -> dict[str, Any]:
    """The request's spend row, once written (rows are written in batches)."""
    deadline = time.monotonic() + 15
    while True:
        rows = httpx2.get(url + "/spend/logs", headers=AUTH, timeout=30).json()["data"]
        found = [r for r in rows if r["request_id"] == request_id]
        if found or time.monotonic() > deadline:
            assert found, f"no spend row for {request_id}"
            return found[0]
        time.sleep(0.1)


def _prompt_estimate_floor() -> int:
    """The cut round's prompt holds at least the question: more tokens than the finished round reported."""
    return ROUND_ONE["prompt_tokens"] + len(orjson.dumps(ASK)) // 4


def test_a_streamed_loop_cut_in_its_last_round_charges_that_round_estimated(gateway: str) -> None:
    body = {"model": "talker", "messages": ASK, "tools": [AUX], "stream": True}
    headers = {**AUTH, "x-request-id": "cut-streamed-loop"}
    words = 0
    with httpx2.stream("POST", gateway + "/v1/chat/completions", json=body, headers=headers, timeout=30) as response:
        for line in response.iter_lines():
            words += line.count("word ")
            if words >= 40:
                break  # 40 of the final answer's 2,000 words: leave
    row = _row(gateway, "cut-streamed-loop")
    assert row["status_code"] == 499
    assert row["error"] == "client disconnected; usage estimated"
    assert row["prompt_tokens"] >= _prompt_estimate_floor()
    assert row["completion_tokens"] >= ROUND_ONE["completion_tokens"] + 40 * len("word ") // 4


def test_a_loop_cut_waiting_for_its_last_round_charges_that_rounds_prompt(gateway: str) -> None:
    body = {"model": "talker", "messages": ASK, "tools": [AUX]}
    headers = {**AUTH, "x-request-id": "cut-loop"}
    with pytest.raises(httpx2.ReadTimeout):
        httpx2.post(gateway + "/v1/chat/completions", json=body, headers=headers, timeout=2)
    row = _row(gateway, "cut-loop")
    assert row["status_code"] == 499
    assert row["error"] == "client disconnected; usage estimated"
    assert row["prompt_tokens"] >= _prompt_estimate_floor()
    assert row["completion_tokens"] == ROUND_ONE["completion_tokens"]  # no answer yet: the prompt only


class _Hanging(ScriptedProvider):
    """A model that streams a little text, then nothing more (the shutdown comes first)."""

    async def stream(self, request: ChatRequest) -> AsyncIterator[JSON]:  # pyright: ignore[reportIncompatibleMethodOverride]
        self.requests.append(request.body)
        delta = {"role": "assistant", "content": "Once upon a time"}
        yield {"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]}
        await anyio.sleep_forever()


async def _never_called(args: dict[str, Any]) -> mcp_types.CallToolResult:
    raise AssertionError("the loop ends before any tool runs")


@pytest.mark.anyio
async def test_a_streamed_loop_the_shutdown_ends_is_a_503_with_its_round_estimated() -> None:
    hub = FakeHub({"aux__echo": _never_called}, timeout=60)
    body: dict[str, Any] = {"model": "m", "messages": ASK, "tools": [AUX], "stream": True}
    plan = plan_tool_loop(body, (), hub, MASTER)
    assert plan is not None
    usages: list[JSON] = []
    chat_request = ChatRequest(body=body, deployment=DEPLOYMENT)
    observer = LoopObserver(usage=usages.append)
    items = stream_with_tools(_Hanging([]), chat_request, plan, hub, MASTER, LoopSettings(), observer)
    done: list[tuple[int, str | None]] = []
    response = KeepAliveStreamingResponse(items, orjson.dumps, lambda status, error: done.append((status, error)), 30)
    story = anyio.Event()

    async def receive() -> Message:
        await anyio.sleep_forever()
        raise AssertionError

    async def send(message: Message) -> None:
        if b"Once upon" in message.get("body", b""):
            story.set()

    task = asyncio.get_running_loop().create_task(response({"type": "http"}, receive, send))
    with anyio.fail_after(5):
        await story.wait()
        task.cancel(shutdown.MESSAGE)  # as `Drain.end` ends the requests still running
        with pytest.raises(asyncio.CancelledError):
            await task
    assert done == [(503, f"{shutdown.MESSAGE}; usage estimated")]
    prompt = len(orjson.dumps(ASK))  # the round's messages: the question only
    assert usages == [{"prompt_tokens": -(-prompt // 4), "completion_tokens": -(-len("Once upon a time") // 4)}]
