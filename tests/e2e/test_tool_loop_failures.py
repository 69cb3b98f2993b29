"""A model call that fails after hub tools ran, end to end, streamed and not: the gateway -> a fake model that asks
for the real `mcp-server-time` tool on its first turn and fails on its second (an HTTP 500, or a connection cut in
the middle of the answer). The tool ran (it may have had side effects and cost), so the spend log counts it and
`/spend/tool_calls` lists it in both modes alike, and the client gets the upstream's error in OpenAI's shape (an SSE
error event once the stream started)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from hub.config import parse_config
from hub.server import build_app
from tests.e2e.conftest import MASTER_KEY
from tests.e2e.test_tool_loop_rounds import ASK, TIME, TIME_SERVER
from tests.fakes.faults import OPENAI_500
from tests.fakes.loop_upstream import USAGE, LoopModel
from tests.support.hub import wait_for_tools
from tests.support.servers import replaying, serve_app

AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}
ERRORS = {"fails-500": ("server_error", None), "fails-cut": ("upstream_error", "upstream_unreachable")}
"""Model -> (type, code) of the error the client gets, streamed or not."""
FAILURES = tuple(ERRORS)
ROLE_DELTA = {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
ROLE_CHUNK = {"id": "chatcmpl-loop", "object": "chat.completion.chunk", "created": 1764936000, "model": "fails-cut",
              "choices": [ROLE_DELTA]}  # fmt: skip


class FailsAfterTools:
    """ASGI: `LoopModel`'s first turn (a call to `time__get_current_time`); once the conversation holds a tool
    result, model `fails-500` answers OpenAI's 500 and `fails-cut` starts its answer and drops the connection."""

    def __init__(self) -> None:
        self.model = LoopModel()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.model.app(scope, receive, send)
            return
        raw, more = b"", True
        while more:  # bounded by the request's body
            message = await receive()
            raw, more = raw + message.get("body", b""), message.get("more_body", False)
        body: dict[str, Any] = json.loads(raw)
        if not any(m.get("role") == "tool" for m in body["messages"]):
            await self.model.app(scope, replaying(raw, receive), send)
        elif body["model"] == "fails-500":
            await JSONResponse(OPENAI_500.body, OPENAI_500.status)(scope, receive, send)
        else:
            await _cut(bool(body.get("stream")), send)


async def _cut(stream: bool, send: Send) -> None:
    """The start of an answer, then the connection drops (uvicorn closes it when the app raises)."""
    if stream:
        kind, start = b"text/event-stream", b"data: " + json.dumps(ROLE_CHUNK).encode() + b"\n\n"
    else:
        kind, start = b"application/json", b'{"id": "chatcmpl-loop", "object": "chat.completion", "choices": ['
    headers = [(b"content-type", kind)] + ([] if stream else [(b"content-length", b"400")])
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": start, "more_body": True})
    raise ConnectionAbortedError("fake upstream drops the connection")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db: Path = tmp_path_factory.mktemp("failures") / "hub.db"
    with serve_app(FailsAfterTools()) as upstream:
        models = [
            {
                "model_name": name,
                "litellm_params": {"model": f"openai/{name}", "api_base": f"{upstream}/v1", "api_key": "sk-x"},
            }
            for name in FAILURES
        ]
        general = {"master_key": MASTER_KEY, "database_url": f"sqlite:///{db}"}
        config = {"model_list": models, "general_settings": general, "mcp_servers": {"time": TIME_SERVER}}
        with serve_app(build_app(parse_config(config, {}))) as url:
            wait_for_tools(url, {"time"}, MASTER_KEY)
            yield url


def _error_of(response: httpx2.Response, stream: bool) -> dict[str, Any]:
    """The error the client got: the body of a failed answer, or the last event of a stream that had started."""
    if not stream:
        return response.json()
    assert response.status_code == 200
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert ": toolhub running time__get_current_time" in response.text and "[DONE]" not in events
    return json.loads(events[-1])


@pytest.mark.parametrize("model", FAILURES)
@pytest.mark.parametrize("stream", [False, True])
def test_a_failure_after_a_hub_tool_ran_records_the_tool_in_both_modes(gateway: str, stream: bool, model: str) -> None:
    body = {"model": model, "messages": ASK, "tools": [TIME], "stream": stream}
    response = httpx2.post(f"{gateway}/v1/chat/completions", headers=AUTH, json=body, timeout=30)
    request_id = response.headers["x-request-id"]
    error = _error_of(response, stream)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["code"]) == ERRORS[model]
    logs = httpx2.get(f"{gateway}/spend/logs", headers=AUTH, params={"page_size": 1000}).json()["data"]
    row = next(r for r in logs if r["request_id"] == request_id)
    assert (row["status"], row["status_code"] >= 500, row["stream"]) == ("failure", True, stream)
    assert row["tool_calls"] == 1  # the tool of the first round, which ran
    assert (row["prompt_tokens"], row["completion_tokens"]) == (USAGE["prompt_tokens"], USAGE["completion_tokens"])
    calls = httpx2.get(f"{gateway}/spend/tool_calls", headers=AUTH, params={"limit": 1000}).json()["data"]
    mine = [(c["server"], c["tool"], c["error"]) for c in calls if c["request_id"] == request_id]
    assert mine == [("time", "get_current_time", None)]
