"""A loop abandoned while a hub tool runs (the client went away): the call it started is reported all the same, as a
cancelled error, so the request's spend row counts it as `/spend/tool_calls` lists it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio
import httpx2
import mcp_types
import pytest

from hub.accounts.auth import MASTER
from hub.loop.plan import plan_tool_loop
from hub.loop.run import LoopObserver, LoopSettings, complete_with_tools
from hub.loop.stream import stream_with_tools
from hub.loop.tools import ToolRun
from providers.base import ChatRequest, Deployment
from tests.fakes.scripted import FakeHub, ScriptedProvider
from tests.loop.conftest import Gateway

ASK = [{"role": "user", "content": "Wait for it."}]
AUX = {"type": "mcp", "server_label": "aux", "require_approval": "never"}
DEPLOYMENT = Deployment(provider="openai", model="scripted", api_base="http://unused")


@pytest.mark.anyio
@pytest.mark.parametrize("stream", [False, True])
async def test_a_tool_call_cancelled_with_its_loop_reaches_the_observer(stream: bool) -> None:
    started = anyio.Event()

    async def hang(args: dict[str, Any]) -> mcp_types.CallToolResult:
        started.set()
        await anyio.sleep_forever()
        raise AssertionError

    hub = FakeHub({"aux__slow": hang}, timeout=60)
    body: dict[str, Any] = {"model": "m", "messages": ASK, "tools": [AUX], "stream": stream}
    plan = plan_tool_loop(body, (), hub, MASTER)
    assert plan is not None
    runs: list[ToolRun] = []
    observer = LoopObserver(runs=runs.extend)
    model = ScriptedProvider([("Let me wait.", [("aux__slow", {})]), "done"])
    chat = ChatRequest(body=body, deployment=DEPLOYMENT)

    async def loop() -> None:
        if stream:
            async for _ in stream_with_tools(model, chat, plan, hub, MASTER, LoopSettings(), observer):
                pass
        else:
            await complete_with_tools(model, chat, plan, hub, MASTER, LoopSettings(), observer)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(loop)
            await started.wait()
            tg.cancel_scope.cancel()  # as the gateway does when the client disconnects
    assert hub.cancelled == 1
    assert [(r.name, r.server, r.is_error) for r in runs] == [("aux__slow", "aux", True)]
    assert "cancelled" in runs[0].content


def _abandon(gateway: Gateway, stream: bool) -> None:
    body = {"model": "agent-slow", "messages": ASK, "tools": [AUX], "stream": stream}
    url, auth = gateway.url + "/v1/chat/completions", gateway.auth()
    if not stream:
        with pytest.raises(httpx2.ReadTimeout):
            httpx2.post(url, json=body, headers=auth, timeout=1.5)
        return
    with httpx2.stream("POST", url, json=body, headers=auth, timeout=30) as response:
        seen: list[str] = []
        for line in response.iter_lines():
            seen.append(line)
            if line == ": keep-alive" and ": toolhub running aux__slow" in seen:
                break  # the slow tool runs: go away


def _rows(gateway: Gateway, path: str, wanted: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """The rows of `path` that are `wanted`, once there are any (spend rows are written in batches)."""
    deadline = time.monotonic() + 15
    while True:
        rows = httpx2.get(gateway.url + path, headers=gateway.auth(), timeout=30).json()["data"]
        found = [r for r in rows if wanted(r)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


@pytest.mark.parametrize("stream", [False, True])
def test_the_spend_row_of_an_abandoned_loop_counts_its_cancelled_tool_call(gateway: Gateway, stream: bool) -> None:
    logs = httpx2.get(gateway.url + "/spend/logs", headers=gateway.auth(), timeout=30).json()["data"]
    before = {r["request_id"] for r in logs}
    _abandon(gateway, stream)
    [row] = _rows(gateway, "/spend/logs", lambda r: r["request_id"] not in before and r["model"] == "agent-slow")
    calls = _rows(gateway, "/spend/tool_calls", lambda c: c["request_id"] == row["request_id"])
    assert (row["status_code"], row["tool_calls"]) == (499, 1)
    assert [(c["tool"], c["error"]) for c in calls] == [("slow", "cancelled")]
