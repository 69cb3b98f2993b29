"""A DELETE of a `/mcp` session while its own requests are in flight: each gets its JSON-RPC error, with its id, in a
whole HTTP answer (hub/mcp/session_end.py), on the JSON path and on the event-stream path alike."""

from __future__ import annotations

import collections
import logging
from typing import Any

import anyio
import httpx2
import orjson
import pytest

from hub.mcp.session_end import SDK_HTTP_LOGGER, QuietEndedSessions
from tests.mcp.conftest import MASTER_KEY, hub_app, running, script_server

pytestmark = pytest.mark.anyio
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
           "Authorization": f"Bearer {MASTER_KEY}"}  # fmt: skip
ENDED = {"code": -32600, "message": "Session terminated before the request completed"}
PLAIN: dict[str, Any] = {}
ASKING = {"sampling": {}}  # a client that may be asked: its requests take the SDK's event-stream path


async def open_session(client: httpx2.AsyncClient, capabilities: dict[str, Any]) -> dict[str, str]:
    params = {
        "protocolVersion": "2025-06-18",
        "capabilities": capabilities,
        "clientInfo": {"name": "t", "version": "1"},
    }
    opened = await client.post("/mcp", headers=HEADERS, json={"jsonrpc": "2.0", "id": 0, "method": "initialize",
                                                              "params": params})  # fmt: skip
    headers = {**HEADERS, "mcp-session-id": opened.headers["mcp-session-id"], "mcp-protocol-version": "2025-06-18"}
    await client.post("/mcp", headers=headers, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
    return headers


def answer_of(response: httpx2.Response) -> dict[str, Any]:
    """The JSON-RPC answer in a JSON body or in the last event of an event stream."""
    if response.headers["content-type"].startswith("text/event-stream"):
        data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
        return orjson.loads([d for d in data if d][-1])
    return response.json()


@pytest.mark.parametrize("capabilities", [PLAIN, ASKING], ids=["json-path", "event-stream-path"])
async def test_a_request_in_flight_when_its_session_is_deleted_gets_its_error(capabilities: dict[str, Any]) -> None:
    app = hub_app({"ans": script_server("answers_server.py")})
    with running(app) as url:
        async with httpx2.AsyncClient(base_url=url, timeout=20) as client:
            headers = await open_session(client, capabilities)
            answers: list[httpx2.Response] = []
            deleted: list[httpx2.Response] = []

            async def slow_call() -> None:
                body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                        "params": {"name": "ans__slow", "arguments": {"sec": 10}}}  # fmt: skip
                answers.append(await client.post("/mcp", headers=headers, json=body))

            async with anyio.create_task_group() as tg:
                tg.start_soon(slow_call)
                await anyio.sleep(0.5)  # the call is with the upstream
                deleted.append(await client.delete("/mcp", headers=headers))
    assert deleted[0].status_code == 200
    [answer] = answers
    assert answer_of(answer) == {"jsonrpc": "2.0", "id": 7, "error": ENDED}
    assert answer.status_code == (404 if capabilities is PLAIN else 200)  # an event stream had begun: its last event


@pytest.mark.parametrize("capabilities", [PLAIN, ASKING], ids=["json-path", "event-stream-path"])
async def test_requests_racing_the_delete_of_their_session_all_get_whole_answers(capabilities: dict[str, Any]) -> None:
    outcomes: collections.Counter[str] = collections.Counter()
    app = hub_app({"ans": script_server("answers_server.py")})
    with running(app) as url:
        async with httpx2.AsyncClient(base_url=url, timeout=20) as client:

            async def post(headers: dict[str, str], request_id: int, method: str, params: dict[str, Any]) -> None:
                body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
                try:
                    response = await client.post("/mcp", headers=headers, json=body)
                except httpx2.TransportError as exc:  # the connection dropped without an answer
                    outcomes[type(exc).__name__] += 1
                    return
                answer = answer_of(response) if response.status_code != 202 else {}
                if "error" in answer:
                    outcomes[f"{response.status_code} {answer['id']} {answer['error']['message']}"] += 1
                else:
                    outcomes[f"{response.status_code} answered"] += 1

            async def delete(headers: dict[str, str]) -> None:
                outcomes[f"DELETE {(await client.delete('/mcp', headers=headers)).status_code}"] += 1

            for _ in range(15):
                headers = await open_session(client, capabilities)
                async with anyio.create_task_group() as tg:
                    tg.start_soon(post, headers, 1, "tools/call", {"name": "ans__slow", "arguments": {"sec": 0.2}})
                    tg.start_soon(post, headers, 2, "tools/list", {})
                    tg.start_soon(delete, headers)
    ended = "Session terminated before the request completed"
    after = "Session has been terminated"  # a request that came after the DELETE: the SDK's 404
    allowed = ("answered", f"1 {ended}", f"2 {ended}", after, "DELETE 200")
    assert all(any(outcome.endswith(a) for a in allowed) for outcome in outcomes), outcomes
    assert not any(outcome.startswith("5") for outcome in outcomes), outcomes


def test_the_sdks_traceback_for_a_message_its_ended_session_cannot_take_is_one_debug_line() -> None:
    def record(exc: BaseException) -> logging.LogRecord:
        return logging.LogRecord(SDK_HTTP_LOGGER, logging.ERROR, __file__, 1, "SSE response error", None,
                                 (type(exc), exc, None))  # fmt: skip

    quiet = QuietEndedSessions()
    closed = record(BaseExceptionGroup("group", [anyio.ClosedResourceError()]))
    assert not quiet.filter(closed) and closed.levelno == logging.DEBUG and closed.exc_info is None
    other = record(ValueError("a bug"))
    assert quiet.filter(other) and other.levelno == logging.ERROR


async def test_a_request_id_in_flight_is_refused_for_a_second_request_and_the_first_is_answered() -> None:
    app = hub_app({"ans": script_server("answers_server.py")})
    with running(app) as url:
        async with httpx2.AsyncClient(base_url=url, timeout=20) as client:
            headers = await open_session(client, ASKING)
            first: list[httpx2.Response] = []
            second: list[httpx2.Response] = []

            async def call(sec: float) -> httpx2.Response:
                body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                        "params": {"name": "ans__slow", "arguments": {"sec": sec}}}  # fmt: skip
                return await client.post("/mcp", headers=headers, json=body)

            async def slow() -> None:
                first.append(await call(1))

            with anyio.fail_after(10):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(slow)
                    await anyio.sleep(0.3)
                    second.append(await call(0))
    error = {"code": -32600, "message": "Invalid Request: id 7 is already in use"}
    assert (second[0].status_code, second[0].json()) == (400, {"jsonrpc": "2.0", "id": 7, "error": error})
    assert answer_of(first[0])["result"]["content"] == [{"type": "text", "text": "done"}]
