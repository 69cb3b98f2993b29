"""Where an upstream's messages about a task go (hub.mcp.routing, hub.mcp.task_relay), against
tests/mcp/servers/task_server.py over stdio: a request or log tagged with a task's related-task metadata reaches only
the client waiting on that task in `tasks/result`, never another key's call; and a tool of an upstream that runs no
tasks is not listed as callable as a task."""

from __future__ import annotations

import json
from typing import Any

import anyio
import orjson
import pytest

from tests.mcp.conftest import hub_of, keyed_hub_app, running, script_server
from tests.mcp.test_tasks_passthrough import KEYS, TASKS, Session, client

pytestmark = pytest.mark.anyio
RELATED = "io.modelcontextprotocol/related-task"


async def streamed(session: Session, method: str, params: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """Every message on the event stream of one request (an elicitation on it answered {"reply": "B"}), and the text
    of its answer."""
    session.next_id += 1
    body = {"jsonrpc": "2.0", "id": session.next_id, "method": method, "params": params}
    seen: list[dict[str, Any]] = []
    accept = {"action": "accept", "content": {"reply": "B"}}
    async with session.http.stream("POST", session.url, json=body, headers=session.headers()) as stream:
        async for line in stream.aiter_lines():
            if not line.startswith("data:"):
                continue
            message = orjson.loads(line[5:])
            if message.get("id") == session.next_id:
                return seen, message["result"]["content"][0]["text"]
            seen.append(message)
            if message.get("method") == "elicitation/create":
                reply = {"jsonrpc": "2.0", "id": message["id"], "result": accept}
                (await session.http.post(session.url, json=reply, headers=session.headers())).raise_for_status()
    raise AssertionError(f"no answer to {method}")


async def test_a_tasks_elicitation_and_log_never_reach_another_keys_call() -> None:
    with running(keyed_hub_app({"raw": script_server("task_server.py")}, KEYS)) as base:
        async with client(f"{base}/mcp") as a, client(f"{base}/mcp", "sk-b") as b:
            await a.open({"tasks": TASKS, "elicitation": {}})
            await b.open({"elicitation": {}})
            await b.result("logging/setLevel", {"level": "debug"})
            await a.result("tools/call", {"name": "raw__job", "arguments": {}, "task": {}})
            seen, told = await streamed(b, "tools/call", {"name": "raw__poke", "arguments": {}})  # asks for A's task
    assert [m.get("method") for m in seen if m.get("method") != "notifications/progress"] == []
    assert json.loads(told)["code"] == -32600  # refused: no call waits on that task


async def test_a_tasks_elicitation_reaches_its_client_in_tasks_result_while_another_key_has_a_call() -> None:
    app = keyed_hub_app({"raw": script_server("task_server.py", "--ask")}, KEYS)
    with running(app) as base:
        router = hub_of(app).upstreams["raw"]._router  # pyright: ignore[reportPrivateUsage]
        waited: dict[str, Any] = {}
        task_id, asked, answer = "", {}, {}
        async with client(f"{base}/mcp") as a, client(f"{base}/mcp", "sk-b") as b, anyio.create_task_group() as tg:
            await a.open({"tasks": TASKS, "elicitation": {}})
            await b.open({})
            created = await a.result("tools/call", {"name": "raw__job", "arguments": {}, "task": {}})

            async def wait() -> None:  # in flight until the elicitation was answered (or refused)
                waited.update(await b.result("tools/call", {"name": "raw__wait", "arguments": {}}))

            tg.start_soon(wait)
            with anyio.fail_after(20):
                while not router.calls:  # noqa: ASYNC110 - B's call reached the upstream session
                    await anyio.sleep(0.02)
            task_id = created["task"]["taskId"]
            asked, answer = await a.answering("tasks/result", {"taskId": task_id}, {"reply": "mine"})
    assert asked["params"]["_meta"][RELATED] == {"taskId": task_id}
    assert json.loads(answer["result"]["content"][0]["text"])["content"] == {"reply": "mine"}
    assert waited["content"][0]["text"] == "waited"


async def test_a_tool_of_an_upstream_without_tasks_is_not_listed_as_callable_as_a_task() -> None:
    with running(keyed_hub_app({"raw": script_server("task_server.py", "--notasks")}, KEYS)) as base:
        async with client(f"{base}/mcp") as a:
            capabilities = await a.open({"tasks": TASKS})
            tools = {t["name"]: t for t in (await a.result("tools/list"))["tools"]}
            refused = await a.request("tools/call", {"name": "raw__job", "arguments": {}, "task": {}})
    assert "tasks" in capabilities  # the hub's: other servers may run tasks
    assert (tools["raw__job"].get("execution") or {}).get("taskSupport") is None
    assert refused["error"]["code"] == -32601
