"""An upstream error answer whose id is null (QA's evil__iderror: -32700 for a request the server could not read)
fails the one request waiting on that stdio connection at once, instead of leaving it to its `call_timeout`; with
several waiting it cannot be matched to one, and each waits for its own answer. Through the served hub's REST call."""

from __future__ import annotations

import time
from typing import Any

import anyio
import httpx2

from tests.mcp.conftest import MASTER_KEY, hub_app, running, script_server

AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}
Timed = tuple[dict[str, Any], float]


async def call(
    http: httpx2.AsyncClient, url: str, name: str, arguments: dict[str, Any]
) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    response = await http.post(f"{url}/mcp/tools/call", headers=AUTH, json={"name": name, "arguments": arguments})
    assert response.status_code == 200, response.text
    return response.json(), time.monotonic() - started


def text(result: dict[str, Any]) -> str:
    return "".join(part.get("text", "") for part in result["content"])


def test_a_null_id_error_fails_the_only_request_waiting_at_once() -> None:
    async def main(url: str) -> None:
        async with httpx2.AsyncClient(timeout=60) as http:
            failed, took = await call(http, url, "nid__nullid", {"message": "Parse error: cannot read"})
            after, _ = await call(http, url, "nid__slow", {"sec": 0})
        assert failed["isError"] is True
        assert "Parse error: cannot read" in text(failed)
        assert took < 5  # call_timeout is 30 s
        assert (after.get("isError", False), text(after)) == (False, "done")

    with running(hub_app({"nid": script_server("answers_server.py", call_timeout=30)})) as url:
        anyio.run(main, url)


def test_with_several_requests_waiting_a_null_id_error_is_matched_to_none() -> None:
    results: dict[str, Timed] = {}

    async def main(url: str) -> None:
        async with httpx2.AsyncClient(timeout=60) as http, anyio.create_task_group() as tg:

            async def run(label: str, name: str, arguments: dict[str, Any]) -> None:
                results[label] = await call(http, url, name, arguments)

            tg.start_soon(run, "slow", "nid__slow", {"sec": 1})
            await anyio.sleep(0.3)  # the slow call is waiting upstream first
            tg.start_soon(run, "nullid", "nid__nullid", {})

    with running(hub_app({"nid": script_server("answers_server.py", call_timeout=2)})) as url:
        anyio.run(main, url)
    (slow, _), (unmatched, took) = results["slow"], results["nullid"]
    assert text(slow) == "done"  # not failed by an error that may not have been its own
    assert unmatched["isError"] is True
    assert took > 1.5  # it waited for its own answer, until call_timeout
