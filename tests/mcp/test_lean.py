"""`/mcp` answers with one JSON body the requests that cannot cause server-to-client messages, else an event stream."""

from __future__ import annotations

from typing import Any

import httpx2

from tests.mcp.conftest import MASTER_KEY, hub_app, running, time_server, tool_server

VERSION = "2025-11-25"


def headers(session: str | None = None) -> dict[str, str]:
    found = {"Authorization": f"Bearer {MASTER_KEY}", "Accept": "application/json, text/event-stream",
             "Content-Type": "application/json", "MCP-Protocol-Version": VERSION}  # fmt: skip
    return {**found, "Mcp-Session-Id": session} if session else found


def open_session(url: str, capabilities: dict[str, Any]) -> str:
    params = {"protocolVersion": VERSION, "capabilities": capabilities, "clientInfo": {"name": "t", "version": "1"}}
    opened = httpx2.post(url, headers=headers(), json={"jsonrpc": "2.0", "id": 1, "method": "initialize",
                                                        "params": params})  # fmt: skip
    session = opened.headers["mcp-session-id"]
    httpx2.post(url, headers=headers(session), json={"jsonrpc": "2.0", "method": "notifications/initialized"})
    return session


def call(url: str, session: str, request_id: int, meta: dict[str, Any] | None = None,
         tool: str = "time__get_current_time") -> httpx2.Response:  # fmt: skip
    arguments = {"timezone": "UTC"} if tool.startswith("time") else {"text": "x"}
    params: dict[str, Any] = {"name": tool, "arguments": arguments, **({"_meta": meta} if meta else {})}
    body = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}
    return httpx2.post(url, headers=headers(session), json=body, timeout=30)


def kind(response: httpx2.Response) -> str:
    return response.headers["content-type"].split(";")[0]


def test_plain_calls_get_json_and_calls_that_may_need_the_stream_get_it() -> None:
    with running(hub_app({"tool": tool_server(), "time": time_server()})) as base:
        url = f"{base}/mcp"
        plain = open_session(url, {})
        asking = open_session(url, {"sampling": {}})
        plain_call = call(url, plain, 2)
        progress_call = call(url, plain, 3, {"progressToken": "p"})
        asking_call = call(url, asking, 2)
        listing = {"jsonrpc": "2.0", "id": 4, "method": "tools/list"}
        listed = httpx2.post(url, headers=headers(plain), json=listing)
        listed_asking = httpx2.post(url, headers=headers(asking), json=listing)
        logging_upstream = call(url, plain, 5, tool="tool__echo")  # tool_server declares logging: it may log
        httpx2.post(url, headers=headers(plain), json={"jsonrpc": "2.0", "id": 7, "method": "logging/setLevel",
                                                        "params": {"level": "info"}})  # fmt: skip
        after_level = call(url, plain, 6)
    assert kind(plain_call) == "application/json"
    assert '"timezone"' in plain_call.json()["result"]["content"][0]["text"]
    assert plain_call.json()["id"] == 2
    streamed = (progress_call, asking_call, logging_upstream, after_level, listed_asking)
    assert {kind(r) for r in streamed} == {"text/event-stream"}
    assert '\\"timezone\\"' in progress_call.text and "echo: x" in logging_upstream.text
    assert kind(listed) == "application/json" and len(listed.json()["result"]["tools"]) > 0
