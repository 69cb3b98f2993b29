"""Task pass-through (hub.mcp.task_relay): a client speaking raw JSON-RPC over streamable HTTP to the hub's /mcp
creates, polls, lists, cancels and collects tasks that run on server-everything over stdio, under hub task ids that
are scoped to its key; a client that sends no `task` keeps the hub running the task to completion."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import orjson
import pytest

from hub.accounts.auth import Principal
from tests.mcp.conftest import (
    EVERYTHING,
    children_matching,
    eventually,
    everything_stdio,
    hub_of,
    keyed_hub_app,
    requires_everything,
    running,
    script_server,
)

pytestmark = pytest.mark.anyio
TOOL = "ev__simulate-research-query"
KEYS = {"sk-a": Principal(key_id="a"), "sk-b": Principal(key_id="b")}
TASKS = {"list": {}, "cancel": {}}


class Session:
    """A raw JSON-RPC client session on /mcp (streamable HTTP, handshake era)."""

    def __init__(self, http: httpx2.AsyncClient, url: str, key: str) -> None:
        self.http, self.url, self.key = http, url, key
        self.session_id = ""
        self.next_id = 0
        self.notifications: list[dict[str, Any]] = []
        self.answered_as: dict[str, str] = {}
        """The content type of the last answer to each method."""

    def headers(self, accept: str = "application/json, text/event-stream") -> dict[str, str]:
        found = {"Authorization": f"Bearer {self.key}", "Accept": accept, "MCP-Protocol-Version": "2025-11-25"}
        return found | ({"Mcp-Session-Id": self.session_id} if self.session_id else {})

    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """The whole JSON-RPC answer (`result` or `error`) to one request."""
        self.next_id += 1
        body = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params or {}}
        response = await self.http.post(self.url, json=body, headers=self.headers())
        response.raise_for_status()
        self.session_id = self.session_id or response.headers.get("mcp-session-id", "")
        self.answered_as[method] = response.headers["content-type"].split(";")[0]
        if response.headers["content-type"].startswith("application/json"):
            return response.json()
        messages = [orjson.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]
        return next(m for m in messages if m.get("id") == self.next_id)

    async def result(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = await self.request(method, params)
        assert "result" in answer, answer
        return answer["result"]

    async def answering(self, method: str, params: dict[str, Any],
                        content: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
        """One request whose event stream brings a request for input: that request, answered with `content`, and
        the answer to `method`."""
        self.next_id += 1
        body = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}
        asked: dict[str, Any] = {}
        async with self.http.stream("POST", self.url, json=body, headers=self.headers()) as stream:
            async for line in stream.aiter_lines():
                message = orjson.loads(line[5:]) if line.startswith("data:") else {}
                if message.get("method") == "elicitation/create":
                    asked = message
                    reply = {"jsonrpc": "2.0", "id": message["id"], "result": {"action": "accept", "content": content}}
                    (await self.http.post(self.url, json=reply, headers=self.headers())).raise_for_status()
                elif message.get("id") == self.next_id:
                    return asked, message
        raise AssertionError(f"no answer to {method}")

    async def open(self, capabilities: dict[str, Any]) -> dict[str, Any]:
        """`initialize` and `notifications/initialized`; the server's capabilities."""
        init = await self.result("initialize", {"protocolVersion": "2025-11-25", "capabilities": capabilities,
                                                "clientInfo": {"name": "raw", "version": "1"}})  # fmt: skip
        body = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        (await self.http.post(self.url, json=body, headers=self.headers())).raise_for_status()
        return init["capabilities"]

    async def listen(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Collect what arrives on the session's GET stream."""
        async with self.http.stream("GET", self.url, headers=self.headers("text/event-stream")) as stream:
            task_status.started()
            async for line in stream.aiter_lines():
                if line.startswith("data:"):
                    self.notifications.append(orjson.loads(line[5:]))


@asynccontextmanager
async def hub(**options: Any) -> AsyncIterator[str]:
    requires_everything()
    with running(keyed_hub_app({"ev": everything_stdio() | options}, KEYS)) as base:
        yield f"{base}/mcp"


@asynccontextmanager
async def client(url: str, key: str = "sk-a") -> AsyncIterator[Session]:
    async with httpx2.AsyncClient(timeout=httpx2.Timeout(10, read=60)) as http:
        yield Session(http, url, key)


async def test_a_task_capable_client_creates_polls_lists_and_collects_a_task_on_the_upstream() -> None:
    async with hub() as url, client(url) as a, client(url, "sk-b") as b:
        capabilities = await a.open({"tasks": TASKS})
        tools = {t["name"]: t for t in (await a.result("tools/list"))["tools"]}
        created = await a.result("tools/call", {"name": TOOL, "arguments": {"topic": "tides"}, "task": {"ttl": 60000}})
        task_id = created["task"]["taskId"]
        polled = await a.result("tasks/get", {"taskId": task_id})
        listed = await a.result("tasks/list")
        result = await a.result("tasks/result", {"taskId": task_id})
        done = await a.result("tasks/get", {"taskId": task_id})
        await b.open({"tasks": TASKS})
        foreign = await b.request("tasks/get", {"taskId": task_id})
        foreign_result = await b.request("tasks/result", {"taskId": task_id})
        b_listed = await b.result("tasks/list")
        unknown = await a.request("tasks/get", {"taskId": "no-such-task"})
        not_a_string = await a.request("tasks/cancel", {"taskId": 7})
    assert capabilities["tasks"] == {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
    assert tools[TOOL]["execution"] == {"taskSupport": "optional"}
    assert created["task"]["status"] == "working" and len(task_id) >= 20
    assert polled["taskId"] == task_id and polled["status"] in ("working", "completed")
    assert [t["taskId"] for t in listed["tasks"]] == [task_id] and "nextCursor" not in listed
    assert "# Research Report: tides" in result["content"][0]["text"]
    assert result["_meta"]["io.modelcontextprotocol/related-task"] == {"taskId": task_id}
    assert done["status"] == "completed"
    for error in (foreign, foreign_result, unknown, not_a_string):
        assert error["error"]["code"] == -32602 and "Task not found" in error["error"]["message"]
    assert b_listed == {"tasks": []}


async def test_an_elicitation_of_the_task_reaches_the_client_waiting_in_tasks_result_under_the_hubs_task_id() -> None:
    async with hub() as url, client(url) as a:
        await a.open({"tasks": TASKS, "elicitation": {}})
        created = await a.result("tools/call", {"name": TOOL, "arguments": {"topic": "python", "ambiguous": True},
                                                "task": {}})  # fmt: skip
        task_id = created["task"]["taskId"]
        asked, answer = await a.answering("tasks/result", {"taskId": task_id}, {"interpretation": "the chosen one"})
    assert asked["method"] == "elicitation/create" and "python" in asked["params"]["message"]
    assert asked["params"]["_meta"]["io.modelcontextprotocol/related-task"] == {"taskId": task_id}
    assert "# Research Report: python (the chosen one)" in answer["result"]["content"][0]["text"]


@pytest.mark.parametrize("capabilities", [{"tasks": TASKS}, {"tasks": TASKS, "elicitation": {}}])
async def test_task_polls_are_answered_with_json_even_in_a_session_that_may_be_asked_for_input(
    capabilities: dict[str, Any],
) -> None:
    async with hub() as url, client(url) as a:
        await a.open(capabilities)
        created = await a.result("tools/call", {"name": TOOL, "arguments": {"topic": "moss"}, "task": {}})
        for method in ("tasks/get", "tasks/cancel"):  # answered, whatever the task's state (the type is the point)
            await a.request(method, {"taskId": created["task"]["taskId"]})
        await a.request("tasks/list")
    assert {m: a.answered_as[m] for m in ("tasks/get", "tasks/cancel", "tasks/list")} == dict.fromkeys(
        ("tasks/get", "tasks/cancel", "tasks/list"), "application/json"
    )


async def test_a_task_on_a_clients_own_upstream_session_is_reached_only_from_that_client_session() -> None:
    async with hub(session="per_client") as url, client(url) as a, client(url) as same_key:
        await a.open({"tasks": TASKS})
        await same_key.open({"tasks": TASKS})
        created = await a.result("tools/call", {"name": TOOL, "arguments": {"topic": "tides"}, "task": {}})
        task_id = created["task"]["taskId"]
        other_get = await same_key.request("tasks/get", {"taskId": task_id})
        other_list = await same_key.result("tasks/list")
        result = await a.result("tasks/result", {"taskId": task_id})
        own_list = await a.result("tasks/list")
    assert other_get["error"]["code"] == -32602 and other_list == {"tasks": []}
    assert "# Research Report: tides" in result["content"][0]["text"]
    assert [t["taskId"] for t in own_list["tasks"]] == [task_id]


async def test_a_task_whose_upstream_restarted_or_was_removed_is_not_found() -> None:
    requires_everything()
    marker = uuid.uuid4().hex
    app = keyed_hub_app({"ev": {**everything_stdio(), "args": [str(EVERYTHING), "stdio", marker]}}, KEYS)
    with running(app) as base:
        url = f"{base}/mcp"
        async with client(url) as a:
            await a.open({"tasks": TASKS})
            restarted = await a.result("tools/call", {"name": TOOL, "arguments": {"topic": "a"}, "task": {}})
            upstream = hub_of(app).upstreams["ev"]
            session = upstream.session()
            for pid in children_matching(marker):
                os.kill(pid, signal.SIGKILL)
            eventually(lambda: upstream.healthy and upstream.session() is not session, what="the upstream's restart")
            lost = await a.request("tasks/get", {"taskId": restarted["task"]["taskId"]})
            removed = await a.result("tools/call", {"name": TOOL, "arguments": {"topic": "b"}, "task": {}})
            hub_of(app).remove("ev")
            gone = await a.request("tasks/result", {"taskId": removed["task"]["taskId"]})
            listed = await a.result("tasks/list")
    assert lost["error"]["code"] == -32602 and "restarted" in lost["error"]["message"]
    assert gone["error"]["code"] == -32602 and "removed" in gone["error"]["message"]
    assert listed == {"tasks": []}


async def test_the_upstreams_status_notifications_reach_the_session_that_created_the_task() -> None:
    task_id = ""
    async with hub() as url, client(url) as a, client(url) as other, anyio.create_task_group() as tg:
        await a.open({"tasks": TASKS})
        await other.open({"tasks": TASKS})
        await tg.start(a.listen)
        await tg.start(other.listen)
        created = await a.result("tools/call", {"name": TOOL, "arguments": {"topic": "kelp"}, "task": {}})
        task_id = created["task"]["taskId"]
        await a.result("tasks/result", {"taskId": task_id})
        with anyio.fail_after(30):  # the listener appends to a list: nothing to wait on but the list
            while not any(n["params"]["status"] == "completed" for n in statuses(a)):  # noqa: ASYNC110
                await anyio.sleep(0.05)
        tg.cancel_scope.cancel()
    assert {n["params"]["taskId"] for n in statuses(a)} == {task_id}
    assert "Gathering sources..." in [n["params"].get("statusMessage") for n in statuses(a)]
    assert statuses(other) == []


def statuses(session: Session) -> list[dict[str, Any]]:
    return [n for n in session.notifications if n.get("method") == "notifications/tasks/status"]


async def test_a_cancelled_task_is_cancelled_on_the_upstream() -> None:
    async with hub() as url, client(url) as a:
        await a.open({"tasks": TASKS})
        created = await a.result("tools/call", {"name": TOOL, "arguments": {"topic": "moss"}, "task": {}})
        task_id = created["task"]["taskId"]
        cancelled = await a.result("tasks/cancel", {"taskId": task_id})
        polled = await a.result("tasks/get", {"taskId": task_id})
        again = await a.request("tasks/cancel", {"taskId": task_id})
    assert cancelled["taskId"] == task_id and cancelled["status"] == "cancelled"
    assert polled["status"] == "cancelled"
    assert again["error"]["code"] == -32602  # the upstream refuses to cancel a terminal task


async def test_a_client_without_tasks_still_gets_the_result_from_the_hub() -> None:
    async with hub() as url, client(url) as a:
        await a.open({})
        answer = await a.result("tools/call", {"name": TOOL, "arguments": {"topic": "tides"}})
        listed = await a.result("tasks/list")
    assert "# Research Report: tides" in answer["content"][0]["text"] and "task" not in answer
    assert listed == {"tasks": []}


async def test_a_task_call_of_a_tool_without_task_support_is_method_not_found() -> None:
    async with hub() as url, client(url) as a:
        await a.open({"tasks": TASKS})
        refused = await a.request("tools/call", {"name": "ev__echo", "arguments": {"message": "hi"}, "task": {}})
        unknown = await a.request("tools/call", {"name": "ev__nope", "arguments": {}, "task": {}})
    assert refused["error"]["code"] == -32601
    assert unknown["error"]["code"] == -32602


async def test_a_task_call_of_a_tool_the_key_may_not_use_is_refused_as_without_task() -> None:
    requires_everything()
    keys = {"sk-ev": Principal(key_id="ev", mcp_servers=frozenset({"ev"}))}
    app = keyed_hub_app({"ev": everything_stdio(), "ans": script_server("answers_server.py")}, keys)
    with running(app) as base:
        async with client(f"{base}/mcp", "sk-ev") as a:
            await a.open({"tasks": TASKS})
            as_task = await a.request("tools/call", {"name": "ans__pid", "arguments": {}, "task": {"ttl": 60000}})
            plain = await a.request("tools/call", {"name": "ans__pid", "arguments": {}})
    refusal = {"code": -32602, "message": "Unknown tool: 'ans__pid'."}  # as an unknown tool (test_scoped_names.py)
    assert plain["error"] == as_task["error"] == refusal
