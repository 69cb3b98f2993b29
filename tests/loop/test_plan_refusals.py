"""What a tool-loop request is refused for: a client tool named like one of the hub's tools or meta-tools, and a
server the key does not have, answered as an unknown one (a scoped key learns nothing of the other servers)."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from hub.accounts.auth import MASTER, Principal
from hub.catalog.meta import META_NAMES
from hub.errors import BadRequest
from hub.loop.plan import plan_tool_loop
from tests.fakes.scripted import FakeHub, text_result
from tests.loop.conftest import Gateway

ASK = [{"role": "user", "content": "What is in the database?"}]
AUX = {"type": "mcp", "server_label": "aux", "require_approval": "never"}
SCHEMA = {"type": "object", "properties": {"query": {"type": "string"}}}


async def answer(args: dict[str, Any]) -> Any:
    return text_result("ok")


def fake_hub() -> FakeHub:
    return FakeHub({"aux__echo": answer, "secret__echo": answer})


def client_tool(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": SCHEMA}}


@pytest.mark.parametrize("name", META_NAMES)
@pytest.mark.parametrize("label", ["aux", "*"])
def test_a_client_tool_named_like_a_meta_tool_is_a_name_conflict(name: str, label: str) -> None:
    body = {"messages": ASK, "tools": [{**AUX, "server_label": label}, client_tool(name)]}
    with pytest.raises(BadRequest) as refused:
        plan_tool_loop(body, (), fake_hub(), MASTER)
    assert (refused.value.code, refused.value.param) == ("tool_name_conflict", "tools")
    assert name in refused.value.message


def test_a_client_tool_named_like_a_meta_tool_is_a_conflict_with_the_alias_servers_too() -> None:
    body = {"messages": ASK, "tools": [client_tool("hub__call_tool")]}
    with pytest.raises(BadRequest) as refused:
        plan_tool_loop(body, ["aux"], fake_hub(), MASTER)
    assert refused.value.code == "tool_name_conflict"


def test_other_client_tools_in_the_hub_namespace_stay_the_clients() -> None:
    body = {"messages": ASK, "tools": [AUX, client_tool("hub__my_own_tool")]}
    plan = plan_tool_loop(body, (), fake_hub(), MASTER)
    assert plan is not None and plan.kind("hub__my_own_tool") == "client"


SCOPED = Principal(key_id="k", mcp_servers=frozenset({"aux"}))


@pytest.mark.parametrize("label", ["secret", "nosuch"])
def test_a_server_the_key_may_not_use_is_refused_like_an_unknown_one(label: str) -> None:
    body = {"messages": ASK, "tools": [{**AUX, "server_label": label}]}
    with pytest.raises(BadRequest) as refused:
        plan_tool_loop(body, (), fake_hub(), SCOPED)
    error = refused.value
    assert (error.status_code, error.code, error.param) == (400, "unknown_mcp_server", "tools[0].server_label")
    assert error.message == f"No MCP server named '{label}' is available to this key."


def test_the_master_key_and_a_permitted_key_keep_their_servers() -> None:
    secret = {"messages": ASK, "tools": [{**AUX, "server_label": "secret"}]}
    plan = plan_tool_loop(secret, (), fake_hub(), MASTER)
    assert plan is not None and list(plan.hub_tools) == ["secret__echo"]
    plan = plan_tool_loop({"messages": ASK, "tools": [AUX]}, (), fake_hub(), SCOPED)
    assert plan is not None and list(plan.hub_tools) == ["aux__echo"]
    with pytest.raises(BadRequest) as refused:
        plan_tool_loop({"messages": ASK, "tools": [{**AUX, "server_label": "nosuch"}]}, (), fake_hub(), MASTER)
    assert refused.value.code == "unknown_mcp_server"


# Over HTTP: every inbound API builds its loop plan through run_chat.


def _chat(tools: list[Any]) -> tuple[str, dict[str, Any]]:
    return "/v1/chat/completions", {"model": "plain", "messages": ASK, "tools": tools}


def _responses(tools: list[Any]) -> tuple[str, dict[str, Any]]:
    return "/v1/responses", {"model": "plain", "input": "What is in the database?", "tools": tools}


@pytest.mark.parametrize("name", ["hub__search_tools", "hub__read_result"])
@pytest.mark.parametrize("api", ["chat", "responses", "messages"])
def test_every_api_refuses_a_client_tool_named_like_a_meta_tool(gateway: Gateway, api: str, name: str) -> None:
    if api == "chat":
        path, body = _chat([AUX, client_tool(name)])
    elif api == "responses":
        path, body = _responses([AUX, {"type": "function", "name": name, "parameters": SCHEMA}])
    else:
        connector = {"type": "url", "name": "aux", "url": "https://x.invalid/mcp"}
        path, body = "/v1/messages", {"model": "plain", "max_tokens": 50, "messages": ASK, "mcp_servers": [connector],
                                      "tools": [{"name": name, "input_schema": SCHEMA}]}  # fmt: skip
    refused = httpx2.post(gateway.url + path, headers=gateway.auth(), json=body, timeout=30)
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert name in error["message"] and "clash" in error["message"]
    if api != "messages":  # Anthropic's error shape has no code
        assert error["code"] == "tool_name_conflict"


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_a_scoped_key_gets_the_same_answer_for_a_server_it_lacks_and_one_that_does_not_exist(
    gateway: Gateway, api: str
) -> None:
    build = _chat if api == "chat" else _responses
    answers = []
    for label in ("secret", "nosuch"):
        path, body = build([{**AUX, "server_label": label}])
        refused = httpx2.post(gateway.url + path, headers=gateway.auth(gateway.scoped_key), json=body, timeout=30)
        error = refused.json()["error"]
        answers.append((refused.status_code, error["code"], error["message"].replace(label, "<label>")))
    refusal = (400, "unknown_mcp_server", "No MCP server named '<label>' is available to this key.")
    assert answers[0] == answers[1] == refusal


def test_the_scoped_key_still_uses_its_server_and_the_master_key_every_server(gateway: Gateway) -> None:
    mine = httpx2.post(gateway.url + "/v1/chat/completions", headers=gateway.auth(gateway.scoped_key),
                       json=_chat([AUX])[1], timeout=30)  # fmt: skip
    theirs = httpx2.post(gateway.url + "/v1/chat/completions", headers=gateway.auth(),
                         json=_chat([{**AUX, "server_label": "secret"}])[1], timeout=30)  # fmt: skip
    assert (mine.status_code, theirs.status_code) == (200, 200)
