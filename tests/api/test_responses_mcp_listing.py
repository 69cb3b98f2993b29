"""Hosted MCP on /v1/responses lists each server's tools as OpenAI does (QA loop #2): an `mcp_list_tools` item also
for a server whose tools wait for approval, before the `mcp_approval_request` items, streamed and not; and, as
OpenAI, once in a conversation: a continuation (the one that answers the approvals too) does not list a server that
an earlier response of it listed."""

from __future__ import annotations

from typing import Any

import openai

from tests.api.test_responses_mcp import APPROVED_DB, DB_TOOLS, client, mcp_gateway

__all__ = ["client", "mcp_gateway"]  # the fixtures, shared with the module's gateway
DB = {"describe_table", "list_tables"}
"""Tools of the postgres_db server the tests use."""


def _kinds(response: Any) -> list[str]:
    return [item.type for item in response.output]


def _approve(first: Any) -> Any:
    return [{"type": "mcp_approval_response", "approval_request_id": first.output[-1].id, "approve": True}]


def test_a_server_whose_tools_need_approval_is_listed_before_the_approval_request(client: openai.OpenAI) -> None:
    first = client.responses.create(model="agent-approve", input="Describe users", tools=[APPROVED_DB])
    assert _kinds(first) == ["mcp_list_tools", "mcp_approval_request"]
    listed = first.output[0]
    assert listed.type == "mcp_list_tools" and listed.server_label == "postgres_db"
    assert DB <= {tool.name for tool in listed.tools}
    second = client.responses.create(model="agent-approve", input=_approve(first), previous_response_id=first.id,
                                     tools=[APPROVED_DB])  # fmt: skip
    assert _kinds(second) == ["mcp_call", "message"]  # listed in the response it continues: not again


def test_the_streamed_approval_flow_lists_the_server_once_too(client: openai.OpenAI) -> None:
    ask: Any = {"model": "agent-approve", "input": "Describe users", "tools": [APPROVED_DB]}
    with client.responses.stream(**ask) as stream:
        added = [event.item.type for event in stream if event.type == "response.output_item.added"]
        first = stream.get_final_response()
    assert added == ["mcp_list_tools", "message", "mcp_approval_request"]  # the fake speaks before it calls, streamed
    assert [k for k in _kinds(first) if k != "message"] == ["mcp_list_tools", "mcp_approval_request"]
    with client.responses.stream(model="agent-approve", input=_approve(first), previous_response_id=first.id,
                                 tools=[APPROVED_DB]) as stream:  # fmt: skip
        second = stream.get_final_response()
    assert _kinds(second) == ["mcp_call", "message"]


def test_a_server_with_tools_that_run_and_tools_that_wait_is_one_list_of_all(client: openai.OpenAI) -> None:
    tool: Any = {**DB_TOOLS, "require_approval": {"never": {"tool_names": ["list_tables"]}}}
    response = client.responses.create(model="agent", input="What is in the database?", tools=[tool])
    assert _kinds(response) == ["mcp_list_tools", "mcp_call", "mcp_approval_request"]
    listed = response.output[0]
    assert listed.type == "mcp_list_tools" and DB <= {t.name for t in listed.tools}


def test_a_continuation_does_not_list_a_server_again_but_a_new_conversation_does(client: openai.OpenAI) -> None:
    first = client.responses.create(model="agent", input="What is in the database?", tools=[DB_TOOLS])
    assert _kinds(first)[0] == "mcp_list_tools"
    second = client.responses.create(model="agent", input="And now?", previous_response_id=first.id, tools=[DB_TOOLS])
    assert "mcp_list_tools" not in _kinds(second)
    again = client.responses.create(model="agent", input="What is in the database?", tools=[DB_TOOLS])
    assert _kinds(again)[0] == "mcp_list_tools"
