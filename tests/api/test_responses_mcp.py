"""Hosted MCP on /v1/responses: hub tools run by the gateway, reported as mcp_list_tools and mcp_call items."""

from __future__ import annotations

import contextvars
import json
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest
from openai.types.responses import Response
from openai.types.responses.mcp_tool_call_error import McpToolExecutionError
from openai.types.responses.response_output_item import McpCall

from hub.api.responses import stored
from hub.config import parse_config
from hub.loop.plan import JSON
from hub.loop.tools import REPORT_OUTPUT, ToolRun
from hub.server import build_app
from tests.fakes.openai_upstream import API_KEY, FakeOpenAI
from tests.support.hub import make_db, wait_for_tools
from tests.support.servers import ROOT, serve_app

MASTER_KEY = "sk-toolhub-responses-mcp"
DB_TOOLS: Any = {"type": "mcp", "server_label": "postgres_db", "require_approval": "never"}


@pytest.fixture(scope="module")
def mcp_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, FakeOpenAI]]:
    folder = tmp_path_factory.mktemp("responses_mcp")
    make_db(folder / "shop.db")
    fake = FakeOpenAI()
    with serve_app(fake.app) as upstream:
        models = [{"model_name": name, "litellm_params": {"model": f"openai/{name}", "api_base": f"{upstream}/v1",
                                                          "api_key": API_KEY}}
                  for name in ("agent", "agent-bad", "agent-mixed", "agent-approve")]  # fmt: skip
        params = {"model": "openai/agent", "api_base": f"{upstream}/v1", "api_key": API_KEY}
        models.append({"model_name": "db-agent", "mcp_servers": ["postgres_db"], "litellm_params": params})
        server = {"transport": "stdio", "command": sys.executable, "cwd": str(ROOT),
                  "args": ["-m", "tools.postgres_db", "--dsn", f"sqlite:///{folder / 'shop.db'}"]}  # fmt: skip
        settings = {"master_key": MASTER_KEY, "database_url": f"sqlite:///{folder / 'toolhub.db'}"}
        config = {"model_list": models, "general_settings": settings, "mcp_servers": {"postgres_db": server}}
        with serve_app(build_app(parse_config(config, {}))) as url:
            wait_for_tools(url, {"postgres_db"}, MASTER_KEY)
            yield url, fake


@pytest.fixture
def client(mcp_gateway: tuple[str, FakeOpenAI]) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{mcp_gateway[0]}/v1", api_key=MASTER_KEY, max_retries=0, timeout=30) as c:
        yield c


def comparable(response: Response) -> list[dict[str, Any]]:
    items = response.model_dump(exclude_none=True)["output"]
    for item in items:
        item.pop("id")
    return items


def test_hub_tools_run_and_are_reported_as_list_tools_and_call_items(
    client: openai.OpenAI, mcp_gateway: tuple[str, FakeOpenAI]
) -> None:
    response = client.responses.create(model="agent", input="What is in the database?", tools=[DB_TOOLS])
    kinds = [item.type for item in response.output]
    assert kinds == ["mcp_list_tools", "mcp_call", "mcp_call", "message"]
    listed = response.output[0]
    assert listed.type == "mcp_list_tools" and listed.server_label == "postgres_db"
    assert {"list_tables", "describe_table"} <= {tool.name for tool in listed.tools}
    first, second = response.output[1], response.output[2]
    assert first.type == "mcp_call" and second.type == "mcp_call"
    assert (first.server_label, first.name, json.loads(first.arguments)) == ("postgres_db", "list_tables", {})
    assert first.output is not None and "users" in first.output and first.error is None
    assert second.name == "describe_table" and second.output is not None
    assert second.output in response.output_text  # the fake model quotes what the tools answered
    sent = mcp_gateway[1].requests[-1]
    assert all(tool["type"] == "function" for tool in sent["tools"])  # never forwarded as an `mcp` tool


def test_a_streamed_mcp_response_rebuilds_the_same_items(client: openai.OpenAI) -> None:
    plain = client.responses.create(model="agent", input="What is in the database?", tools=[DB_TOOLS])
    with client.responses.stream(model="agent", input="What is in the database?", tools=[DB_TOOLS]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    # the fake says "Let me look." before its tool calls only when streaming: the answers differ by that text
    assert comparable(final)[:-1] == comparable(plain)[:-1]
    assert final.output_text.endswith(plain.output_text)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    added = [e.item.type for e in events if e.type == "response.output_item.added"]
    assert added == ["mcp_list_tools", "mcp_call", "mcp_call", "message"]


def test_a_failing_tool_call_is_an_mcp_call_with_its_error(client: openai.OpenAI) -> None:
    response = client.responses.create(model="agent-bad", input="describe it", tools=[DB_TOOLS])
    call = next(item for item in response.output if item.type == "mcp_call")
    assert call.error and call.output is None and call.status == "failed"


def _failed_call(response: Response) -> McpCall:
    return next(item for item in response.output if item.type == "mcp_call")


def test_a_failed_call_s_error_is_the_error_object_the_sdk_types(client: openai.OpenAI) -> None:
    ask: Any = {"model": "agent-bad", "input": "describe it", "tools": [DB_TOOLS]}
    plain = client.responses.create(**ask)
    with client.responses.stream(**ask) as stream:
        streamed = stream.get_final_response()
    done = [e.item for e in stream_events(client, ask) if e.type == "response.output_item.done"]
    for call in [_failed_call(plain), _failed_call(streamed), _failed_call(client.responses.retrieve(plain.id)),
                 next(i for i in done if i.type == "mcp_call")]:  # fmt: skip
        assert isinstance(call.error, McpToolExecutionError), call.error
        assert call.error.type == "mcp_tool_execution_error" and call.output is None and call.status == "failed"
        content: Any = call.error.content
        assert [part["type"] for part in content] == ["text"] and "'no_such_table'" in content[0]["text"]
        assert not content[0]["text"].startswith("Error:")  # the model's prefix; the type says it
    plain.model_dump()  # no serialisation warning (warnings are errors here)


def test_an_mcp_call_an_older_version_stored_with_a_string_error_is_answered_with_the_error_object() -> None:
    old = {"id": "mcp_1", "type": "mcp_call", "server_label": "postgres_db", "name": "describe_table",
           "arguments": "{}", "output": None, "error": "Error: no such table", "status": "failed"}  # fmt: skip
    call = McpCall.model_validate(stored.listed(old))
    assert isinstance(call.error, McpToolExecutionError)
    assert call.error.content == [{"type": "text", "text": "no such table"}]
    assert stored.listed({**old, "error": None, "output": "ok"}) == {**old, "error": None, "output": "ok"}


def stream_events(client: openai.OpenAI, ask: Any) -> list[Any]:
    with client.responses.stream(**ask) as stream:
        return list(stream)


def test_a_client_function_call_next_to_hub_tools_goes_back_to_the_client(client: openai.OpenAI) -> None:
    chart: Any = {"type": "function", "name": "show_chart", "parameters": {"type": "object", "properties": {}}}
    response = client.responses.create(model="agent-mixed", input="chart it", tools=[DB_TOOLS, chart])
    assert [i.type for i in response.output if i.type == "function_call"] == ["function_call"]
    assert next(i for i in response.output if i.type == "function_call").name == "show_chart"


@pytest.mark.parametrize(
    ("tool", "param"),
    [
        ({"type": "mcp", "server_label": "no_such_server", "require_approval": "never"}, "tools"),
    ],
)
def test_unusable_mcp_entries_get_a_400(mcp_gateway: tuple[str, FakeOpenAI], tool: Any, param: str) -> None:
    body = {"model": "agent", "input": "hi", "tools": [tool]}
    answer = httpx2.post(f"{mcp_gateway[0]}/v1/responses", json=body, headers={"Authorization": f"Bearer {MASTER_KEY}"})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"].startswith(param)


APPROVED_DB: Any = {**DB_TOOLS, "require_approval": "always"}


def test_a_call_that_needs_approval_waits_for_it_and_runs_once_approved(
    client: openai.OpenAI, mcp_gateway: tuple[str, FakeOpenAI]
) -> None:
    first = client.responses.create(model="agent-approve", input="Describe users", tools=[APPROVED_DB])
    assert [item.type for item in first.output] == ["mcp_list_tools", "mcp_approval_request"]
    asked = first.output[-1]
    assert asked.type == "mcp_approval_request"
    assert (asked.server_label, asked.name, json.loads(asked.arguments)) == ("postgres_db", "describe_table",
                                                                             {"table": "users"})  # fmt: skip
    sent = mcp_gateway[1].requests[-1]
    assert all(t["type"] == "function" for t in sent["tools"]) and len(mcp_gateway[1].requests) >= 1
    yes: Any = [{"type": "mcp_approval_response", "approval_request_id": asked.id, "approve": True}]
    second = client.responses.create(model="agent-approve", input=yes, previous_response_id=first.id,
                                     tools=[APPROVED_DB])  # fmt: skip
    assert [item.type for item in second.output] == ["mcp_call", "message"]
    call = second.output[0]
    assert call.type == "mcp_call" and call.approval_request_id == asked.id and call.name == "describe_table"
    assert call.output is not None and '"table": "users"' in call.output
    assert call.output in second.output_text  # the model got the result


def test_a_refused_call_does_not_run_and_the_model_is_told(client: openai.OpenAI) -> None:
    first = client.responses.create(model="agent-approve", input="Describe users", tools=[APPROVED_DB])
    no: Any = [{"type": "mcp_approval_response", "approval_request_id": first.output[-1].id, "approve": False}]
    second = client.responses.create(model="agent-approve", input=no, previous_response_id=first.id,
                                     tools=[APPROVED_DB])  # fmt: skip
    assert [item.type for item in second.output] == ["message"]
    assert "did not approve" in second.output_text


def test_an_approval_for_a_request_that_was_not_made_gets_a_400(client: openai.OpenAI) -> None:
    first = client.responses.create(model="agent-approve", input="Describe users", tools=[APPROVED_DB])
    bogus: Any = [{"type": "mcp_approval_response", "approval_request_id": "mcpr_nope", "approve": True}]
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="agent-approve", input=bogus, previous_response_id=first.id, tools=[APPROVED_DB])
    assert "mcpr_nope" in refused.value.message
    with pytest.raises(openai.BadRequestError):  # without previous_response_id there is nothing to approve
        client.responses.create(model="agent-approve", input=bogus, tools=[APPROVED_DB])


@pytest.mark.parametrize("approve", [True, False])
def test_only_a_call_that_became_an_approval_request_can_be_approved_or_refused(
    client: openai.OpenAI, mcp_gateway: tuple[str, FakeOpenAI], approve: bool
) -> None:
    chart: Any = {"type": "function", "name": "show_chart", "parameters": {"type": "object", "properties": {}}}
    tools: Any = [APPROVED_DB, chart]
    first = client.responses.create(model="agent-mixed", input="chart it", tools=tools)
    assert [item.type for item in first.output] == ["mcp_list_tools", "mcp_approval_request", "function_call"]
    client_call = first.output[2]
    assert client_call.type == "function_call"
    sent = len(mcp_gateway[1].requests)
    guessed: Any = [{"type": "mcp_approval_response", "approval_request_id": f"mcpr_{client_call.call_id}",
                     "approve": approve}]  # fmt: skip
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="agent-mixed", input=guessed, previous_response_id=first.id, tools=tools)
    error: Any = refused.value.body
    assert (error["param"], error["code"]) == ("input[0].approval_request_id", "invalid_value")
    assert f"mcpr_{client_call.call_id}" in error["message"]
    assert len(mcp_gateway[1].requests) == sent  # nothing ran, the model was not asked


def test_tool_outputs_are_in_the_loop_record_only_when_an_inbound_api_asks() -> None:
    run = ToolRun(round=1, id="call_1", name="postgres_db__list_tables", server="postgres_db", arguments="{}",
                  content="tables: users")  # fmt: skip
    assert "output" not in run.public()  # the chat path's `toolhub` record is unchanged

    def asked() -> JSON:
        REPORT_OUTPUT.set(True)
        return run.public()

    assert contextvars.copy_context().run(asked)["output"] == "tables: users"
    assert "output" not in run.public()  # set in another context only


def test_tools_named_under_never_run_at_once_and_the_others_wait_for_approval(client: openai.OpenAI) -> None:
    tool: Any = {**DB_TOOLS, "require_approval": {"never": {"tool_names": ["list_tables"]}}}
    response = client.responses.create(model="agent", input="What is in the database?", tools=[tool])
    kinds = [item.type for item in response.output]
    assert kinds == ["mcp_list_tools", "mcp_call", "mcp_approval_request"]
    listed, ran, asked = response.output
    assert listed.type == "mcp_list_tools" and {"list_tables", "describe_table"} <= {t.name for t in listed.tools}
    assert ran.type == "mcp_call" and ran.name == "list_tables" and ran.output
    assert asked.type == "mcp_approval_request" and asked.name == "describe_table"


def test_an_alias_with_default_hub_servers_reports_its_tool_calls_too(client: openai.OpenAI) -> None:
    response = client.responses.create(model="db-agent", input="What is in the database?")
    assert [item.type for item in response.output] == ["mcp_list_tools", "mcp_call", "mcp_call", "message"]
    assert all(item.output for item in response.output if item.type == "mcp_call")


def test_the_approval_flow_streamed_rebuilds_the_same_items(client: openai.OpenAI) -> None:
    ask: Any = {"model": "agent-approve", "input": "Describe users", "tools": [APPROVED_DB]}
    with client.responses.stream(**ask) as stream:
        first = stream.get_final_response()
    plain = client.responses.create(**ask)
    # the fake says "Let me look." before its calls only when streaming: compare the other items
    assert [i for i in comparable(first) if i["type"] != "message"] == comparable(plain)
    asked = first.output[-1]
    assert asked.type == "mcp_approval_request" and asked.name == "describe_table"
    yes: Any = [{"type": "mcp_approval_response", "approval_request_id": asked.id, "approve": True}]
    with client.responses.stream(model="agent-approve", input=yes, previous_response_id=first.id,
                                 tools=[APPROVED_DB]) as stream:  # fmt: skip
        second = stream.get_final_response()
    assert [item.type for item in second.output] == ["mcp_call", "message"]
    call = second.output[0]
    assert call.type == "mcp_call" and call.approval_request_id == asked.id and call.output
    assert call.output in second.output_text
    assert client.responses.retrieve(second.id).output_text == second.output_text


def _spend(url: str, path: str, request_id: str) -> list[dict[str, Any]]:
    """The rows of `path` for one request, once the usage writer stored them."""
    rows: list[dict[str, Any]] = []
    with httpx2.Client(base_url=url, headers={"Authorization": f"Bearer {MASTER_KEY}"}) as admin:
        for _ in range(100):
            rows = [r for r in admin.get(path, params={"limit": 1000}).json()["data"] if r["request_id"] == request_id]
            if rows:
                break
            time.sleep(0.05)
    return rows


def test_an_approved_call_is_recorded_like_a_loop_call(
    client: openai.OpenAI, mcp_gateway: tuple[str, FakeOpenAI]
) -> None:
    first = client.responses.create(model="agent-approve", input="Describe users", tools=[APPROVED_DB])
    yes: Any = [{"type": "mcp_approval_response", "approval_request_id": first.output[-1].id, "approve": True}]
    raw = client.responses.with_raw_response.create(model="agent-approve", input=yes, previous_response_id=first.id,
                                                    tools=[APPROVED_DB])  # fmt: skip
    request_id = raw.headers["x-request-id"]
    calls = _spend(mcp_gateway[0], "/spend/tool_calls", request_id)
    assert [(c["server"], c["tool"], c["error"], c["key_hash"]) for c in calls] == [
        ("postgres_db", "describe_table", None, "master")
    ]
