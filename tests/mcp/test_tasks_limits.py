"""Task pass-through limits and lifetimes (hub.mcp.task_store), against tests/mcp/servers/task_server.py: status
routing after an upstream restart, the per-key cap and the tasks it no longer counts, the client's and the upstream's
ttl, expiry, a cancelled create, requests before `initialize`, the related-task of a result, and what a task keeps
alive once its client session or hub ended."""

from __future__ import annotations

import contextlib
import gc
import math
import os
import signal
import uuid
import weakref
from collections.abc import Awaitable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import anyio
import mcp_types as types
import pytest
from mcp.server.connection import Connection
from mcp.shared.exceptions import MCPError

from hub.mcp.task_store import MAX_TASKS, MAX_TTL_MS, MIN_TTL_MS, TaskRelay
from hub.mcp.upstream import Upstream
from tests.mcp.conftest import children_matching, eventually, hub_of, keyed_hub_app, running, script_server
from tests.mcp.stdio_peer import stdio_peer, write_config
from tests.mcp.test_tasks_passthrough import KEYS, TASKS, client, statuses

pytestmark = pytest.mark.anyio
RELATED = "io.modelcontextprotocol/related-task"


def task_server(*args: str, **options: Any) -> dict[str, Any]:
    return script_server("task_server.py", *args, **options)


async def test_a_status_of_a_new_task_after_an_upstream_restart_does_not_reach_a_stale_entry() -> None:
    marker = uuid.uuid4().hex
    app = keyed_hub_app({"raw": task_server(marker)}, KEYS)
    with running(app) as base:
        url = f"{base}/mcp"
        async with client(url) as a, client(url, "sk-b") as b, anyio.create_task_group() as tg:
            await a.open({"tasks": TASKS})
            await b.open({"tasks": TASKS})
            await tg.start(a.listen)
            await a.result("tools/call", {"name": "raw__job", "arguments": {"who": "A"}, "task": {}})
            upstream = hub_of(app).upstreams["raw"]
            session = upstream.session()
            for pid in children_matching(marker):
                os.kill(pid, signal.SIGKILL)
            eventually(lambda: upstream.healthy and upstream.session() is not session, what="restart")
            await b.result("tools/call", {"name": "raw__needs", "arguments": {"who": "B"}})  # the hub runs B's task
            await a.result("tools/call", {"name": "raw__job", "arguments": {"who": "A2"}, "task": {}})
            with anyio.fail_after(20):  # A2's status comes after B's on the upstream's pipe
                while "STATUS OF A2's TASK" not in messages(a):  # noqa: ASYNC110 - the GET stream's collector appends
                    await anyio.sleep(0.05)
            tg.cancel_scope.cancel()
    assert messages(a) == ["STATUS OF A's TASK", "STATUS OF A2's TASK"]


def messages(session: Any) -> list[str]:
    return [n["params"].get("statusMessage") for n in statuses(session)]


async def test_a_key_at_its_task_cap_is_refused_until_one_of_its_tasks_ended() -> None:
    with running(keyed_hub_app({"raw": task_server()}, KEYS)) as base:
        async with client(f"{base}/mcp") as a, client(f"{base}/mcp", "sk-b") as b:
            await a.open({"tasks": TASKS})
            await b.open({"tasks": TASKS})
            call = {"name": "raw__job", "arguments": {}, "task": {}}
            ids = [(await a.result("tools/call", call))["task"]["taskId"] for _ in range(MAX_TASKS)]
            refused = await a.request("tools/call", call)
            other_key = await b.result("tools/call", call)
            await a.result("tasks/result", {"taskId": ids[3]})
            again = await a.result("tools/call", call)
            listed = [t["taskId"] for t in (await a.result("tasks/list"))["tasks"]]
    assert refused["error"]["code"] == -32600, refused
    assert "task" in other_key
    assert "task" in again
    assert ids[3] not in listed  # the ended one made room
    assert len(listed) == MAX_TASKS


async def test_a_task_the_hub_cannot_keep_is_cancelled_on_the_upstream() -> None:
    with running(keyed_hub_app({"raw": task_server()}, KEYS)) as base:
        async with client(f"{base}/mcp") as a, client(f"{base}/mcp") as a2:
            await a.open({"tasks": TASKS})
            await a2.open({"tasks": TASKS})
            for _ in range(MAX_TASKS - 1):
                await a.result("tools/call", {"name": "raw__job", "arguments": {}, "task": {}})
            held = {"name": "raw__job", "arguments": {"hold": 2}, "task": {}}
            answers: list[dict[str, Any]] = []
            async with anyio.create_task_group() as tg:  # both pass the cap's check; the upstream answers both
                for session in (a, a2):
                    tg.start_soon(lambda s=session: collect(answers, s.request("tools/call", held)))
            cancels = await a.result("tools/call", {"name": "raw__cancels", "arguments": {}})
    assert sorted("result" in answer for answer in answers) == [False, True]
    assert next(answer for answer in answers if "error" in answer)["error"]["code"] == -32600
    assert cancels["content"][0]["text"] == "1"


async def collect(answers: list[dict[str, Any]], request: Awaitable[dict[str, Any]]) -> None:
    answers.append(await request)


@pytest.mark.parametrize("task", [{"ttl": "x"}, {"ttl": -5}, {"ttl": 1.5}, "x", [1]])
async def test_invalid_task_params_are_invalid_params_from_the_hub(task: Any) -> None:
    with running(keyed_hub_app({"raw": task_server()}, KEYS)) as base:
        async with client(f"{base}/mcp") as a:
            await a.open({"tasks": TASKS})
            answer = await a.request("tools/call", {"name": "raw__job", "arguments": {}, "task": task})
            listed = await a.result("tasks/list")
    assert answer["error"]["code"] == -32602, answer
    assert listed["tasks"] == []


@pytest.mark.parametrize("ttl", [10**400, None])
async def test_a_huge_or_null_ttl_is_asked_of_the_upstream_as_the_hubs_maximum(ttl: int | None) -> None:
    with running(keyed_hub_app({"raw": task_server()}, KEYS)) as base:
        async with client(f"{base}/mcp") as a:
            await a.open({"tasks": TASKS})
            created = await a.result("tools/call", {"name": "raw__job", "arguments": {}, "task": {"ttl": ttl}})
    assert created["task"]["ttl"] == MAX_TTL_MS  # the server echoes the ttl it was asked for


@pytest.mark.parametrize("echoed", [str(10**400), "-1000", "null"])
async def test_a_task_whose_upstream_answers_a_huge_negative_or_null_ttl_is_kept(echoed: str) -> None:
    with running(keyed_hub_app({"raw": task_server(f"--ttl={echoed}")}, KEYS)) as base:
        async with client(f"{base}/mcp") as a:
            await a.open({"tasks": TASKS})
            created = await a.result("tools/call", {"name": "raw__job", "arguments": {}, "task": {"ttl": 1000}})
            got = await a.result("tasks/get", {"taskId": created["task"]["taskId"]})
    assert got["taskId"] == created["task"]["taskId"]
    assert created["task"]["ttl"] == MAX_TTL_MS  # what the hub keeps it for


async def test_a_result_names_its_task_even_when_the_upstreams_does_not() -> None:
    with running(keyed_hub_app({"raw": task_server()}, KEYS)) as base:
        async with client(f"{base}/mcp") as a:
            await a.open({"tasks": TASKS})
            created = await a.result("tools/call", {"name": "raw__job", "arguments": {}, "task": {}})
            result = await a.result("tasks/result", {"taskId": created["task"]["taskId"]})
    assert result["content"][0]["text"] == "done"
    assert result["_meta"][RELATED] == {"taskId": created["task"]["taskId"]}


@pytest.mark.parametrize(("flag", "offered"), [("--notasks", False), ("--tasks", True)])
async def test_a_servers_own_endpoint_offers_tasks_only_when_that_server_runs_them(flag: str, offered: bool) -> None:
    with running(keyed_hub_app({"raw": task_server(flag)}, KEYS)) as base:
        async with client(f"{base}/mcp/raw") as a:
            capabilities = await a.open({"tasks": TASKS})
    assert ("tasks" in capabilities) is offered


def test_task_requests_before_initialize_are_refused_on_toolhub_stdio(tmp_path: Path) -> None:
    with stdio_peer(write_config(tmp_path, {"raw": task_server()})) as peer:
        listed = peer.answer(peer.request("tasks/list"))
        call = {"name": "raw__job", "arguments": {}, "task": {}}
        created = peer.answer(peer.request("tools/call", call))
    assert "error" in listed, listed
    assert "error" in created, created


async def test_tasks_keep_neither_an_ended_clients_own_upstream_session_nor_a_stopped_hub_alive() -> None:
    kept, own, stopped = await tasks_of_an_ended_session()
    for _ in range(5):  # bounded: the closed session's tasks end in the background
        gc.collect()
        await anyio.sleep(0.1)
    assert kept == []
    assert own() is None
    assert stopped() is None


async def tasks_of_an_ended_session() -> tuple[list[Any], weakref.ref[Any], weakref.ref[Any]]:
    """A per_client task's key's tasks once its client session ended, that session's own upstream and the hub (a
    task of another session is left in it), the hub stopped."""
    app = keyed_hub_app({"raw": task_server(session="per_client")}, KEYS)
    with running(app) as base:
        hub = hub_of(app)
        async with client(f"{base}/mcp") as a:
            await a.open({"tasks": TASKS})
            await a.result("tools/call", {"name": "raw__job", "arguments": {}, "task": {}})
            own = weakref.ref(next(iter(hub.sessions._open.values())).upstream)  # pyright: ignore[reportPrivateUsage]
            await a.http.delete(a.url, headers=a.headers())  # ends the client's MCP session
        eventually(lambda: not hub.sessions._open, what="the client's own session closed")  # pyright: ignore[reportPrivateUsage]
        kept = hub.sessions.tasks.of(("a", False))
        async with client(f"{base}/mcp") as a:
            await a.open({"tasks": TASKS})
            await a.result("tools/call", {"name": "raw__job", "arguments": {}, "task": {}})
        return kept, own, weakref.ref(hub)


async def test_an_ended_clients_own_upstream_session_is_collectable_while_the_hub_runs() -> None:
    app = keyed_hub_app({"raw": task_server(session="per_client")}, KEYS)
    with running(app) as base:
        hub = hub_of(app)
        async with client(f"{base}/mcp") as a:
            await a.open({"tasks": TASKS})
            await a.result("tools/call", {"name": "raw__job", "arguments": {}, "task": {}})
            await a.result("tools/call", {"name": "raw__needs", "arguments": {}})  # the hub's task: an unknown status
            own = weakref.ref(next(iter(hub.sessions._open.values())).upstream)  # pyright: ignore[reportPrivateUsage]
            await a.http.delete(a.url, headers=a.headers())
        eventually(lambda: not hub.sessions._open, what="the client's own session closed")  # pyright: ignore[reportPrivateUsage]
        assert await collected(own)


async def collected(ref: weakref.ref[Any]) -> bool:
    for _ in range(50):  # bounded: a closed session's child process and tasks end in the background
        gc.collect()
        if ref() is None:
            return True
        await anyio.sleep(0.2)
    return False


class _Session:
    """An upstream session (weakly referable)."""


async def test_a_status_that_came_before_its_task_is_replayed_once() -> None:
    relay, session = TaskRelay(), _Session()
    upstream = cast(Upstream, SimpleNamespace(healthy=True, session=lambda: session))
    times = {"createdAt": "2026-01-01T00:00:00Z", "lastUpdatedAt": "2026-01-01T00:00:00Z", "ttl": 60_000}
    params = types.TaskStatusNotificationParams.model_validate({"taskId": "t1", "status": "input_required"} | times)
    await relay.status(upstream, params)
    first = relay.add("a", upstream, upstream, session, {"taskId": "t1", "status": "working"}, None)
    await relay.replay(first)
    relay.forget(first)
    again = relay.add("a", upstream, upstream, session, {"taskId": "t1", "status": "working"}, None)
    await relay.replay(again)
    assert (first.status, again.status) == ("input_required", "working")


class _Connection:
    """A client session: its `exit_stack` unwinds when it ends."""

    def __init__(self) -> None:
        self.exit_stack = contextlib.AsyncExitStack()


async def test_a_task_created_for_a_client_session_that_ended_is_refused() -> None:
    relay, session, connection = TaskRelay(), _Session(), cast(Connection, _Connection())
    upstream = cast(Upstream, SimpleNamespace(healthy=True, session=lambda: session))
    relay.watch(connection)  # before the create is sent
    await connection.exit_stack.aclose()
    with pytest.raises(MCPError) as refused:
        relay.add("a", upstream, upstream, session, {"taskId": "t1"}, connection)
    assert refused.value.error.code == types.INVALID_REQUEST
    assert relay.of("a") == []


@pytest.mark.parametrize(("args", "ttl"), [((), 0), (("--ttl=0",), 1000)])
async def test_a_task_with_a_ttl_of_0_from_the_client_or_the_upstream_is_kept_a_minute(
    args: tuple[str, ...], ttl: int
) -> None:
    with running(keyed_hub_app({"raw": task_server(*args)}, KEYS)) as base:
        async with client(f"{base}/mcp") as a:
            await a.open({"tasks": TASKS})
            created = await a.result("tools/call", {"name": "raw__job", "arguments": {}, "task": {"ttl": ttl}})
            got = await a.request("tasks/get", {"taskId": created["task"]["taskId"]})
    assert created["task"]["ttl"] == MIN_TTL_MS
    assert got["result"]["taskId"] == created["task"]["taskId"], got


async def test_a_task_that_expired_before_it_ended_is_cancelled_on_the_upstream() -> None:
    app = keyed_hub_app({"raw": task_server()}, KEYS)
    with running(app) as base:
        async with client(f"{base}/mcp") as a:
            await a.open({"tasks": TASKS})
            for _ in range(2):
                await a.result("tools/call", {"name": "raw__job", "arguments": {}, "task": {}})
            done, unfinished = hub_of(app).sessions.tasks.of(("a", False))
            await a.result("tasks/result", {"taskId": done.hub_id})
            done.expires = unfinished.expires = -math.inf
            listed = await a.result("tasks/list")
            cancels = await a.result("tools/call", {"name": "raw__cancels", "arguments": {}})
    assert listed == {"tasks": []}
    assert cancels["content"][0]["text"] == "1"  # the one that had not ended


async def test_a_task_created_for_a_call_its_client_cancelled_is_cancelled_on_the_upstream() -> None:
    with running(keyed_hub_app({"raw": task_server()}, KEYS)) as base:
        async with client(f"{base}/mcp") as a, client(f"{base}/mcp") as a2:
            await a.open({"tasks": TASKS})
            await a2.open({"tasks": TASKS})
            held = {"name": "raw__job", "arguments": {"hold": 2}, "task": {}}
            async with anyio.create_task_group() as tg:
                tg.start_soon(a.request, "tools/call", held)
                await until_held(a2, 1)  # a's call waits on the upstream
                cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": a.next_id}}
                (await a.http.post(a.url, json=cancel, headers=a.headers())).raise_for_status()
                await a2.result("tools/call", held)  # the upstream creates both tasks now
            cancels = await a2.result("tools/call", {"name": "raw__cancels", "arguments": {}})
            listed = await a2.result("tasks/list")
    assert int(cancels["content"][0]["text"]) + len(listed["tasks"]) == 2  # each either kept or cancelled


async def test_a_task_created_for_a_client_session_that_ended_meanwhile_is_cancelled_or_kept() -> None:
    with running(keyed_hub_app({"raw": task_server()}, KEYS)) as base:
        async with client(f"{base}/mcp") as a, client(f"{base}/mcp") as a2:
            await a.open({"tasks": TASKS})
            await a2.open({"tasks": TASKS})
            held = {"name": "raw__job", "arguments": {"hold": 2}, "task": {}}
            async with anyio.create_task_group() as tg:
                tg.start_soon(unanswered, a.request("tools/call", held))
                await until_held(a2, 1)  # a's call waits on the upstream
                await a.http.delete(a.url, headers=a.headers())  # ends a's MCP session
                await a2.result("tools/call", held)  # the upstream creates both tasks now
            cancels = await a2.result("tools/call", {"name": "raw__cancels", "arguments": {}})
            listed = await a2.result("tasks/list")
    assert int(cancels["content"][0]["text"]) + len(listed["tasks"]) == 2  # each either kept or cancelled


async def unanswered(request: Awaitable[Any]) -> None:
    """A request whose session ends before it is answered (its event stream ends without the answer)."""
    with contextlib.suppress(StopIteration, RuntimeError):
        await request


async def until_held(session: Any, count: int) -> None:
    """Until `count` held calls reached the task server (bounded): a poll, the server's count is its own."""
    with anyio.fail_after(20):
        for _ in range(1000):
            answer = await session.result("tools/call", {"name": "raw__held", "arguments": {}})
            if answer["content"][0]["text"] == str(count):
                return
            await anyio.sleep(0.02)
    raise AssertionError(f"{count} held calls never arrived")


@pytest.mark.parametrize("lost", ["restarted", "removed"])
async def test_tasks_lost_with_their_upstream_no_longer_count_against_the_cap(lost: str) -> None:
    marker = uuid.uuid4().hex
    app = keyed_hub_app({"raw": task_server(marker), "other": task_server()}, KEYS)
    with running(app) as base:
        async with client(f"{base}/mcp") as a:
            await a.open({"tasks": TASKS})
            for _ in range(MAX_TASKS):
                await a.result("tools/call", {"name": "raw__job", "arguments": {}, "task": {}})
            upstream = hub_of(app).upstreams["raw"]
            session = upstream.session()
            if lost == "removed":
                hub_of(app).remove("raw")
            else:
                for pid in children_matching(marker):
                    os.kill(pid, signal.SIGKILL)
                eventually(lambda: upstream.healthy and upstream.session() is not session, what="restart")
            after = await a.request("tools/call", {"name": "other__job", "arguments": {}, "task": {}})
    assert "result" in after, after
