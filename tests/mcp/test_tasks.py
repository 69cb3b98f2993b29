"""A tool that requires task augmentation (server-everything's `simulate-research-query`) runs to completion in the
hub, for MCP clients and REST alike; an elicitation the task makes reaches the client whose call started it."""

from __future__ import annotations

from typing import Any

import httpx2
import mcp_types as types
import pytest
from mcp.client.session import ClientRequestContext

from hub.mcp.tasks import requires_task, without_task_requirement
from tests.mcp.conftest import MASTER_KEY, everything_stdio, hub_app, mcp_client, requires_everything, running, text_of

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")]
TOOL = "ev__simulate-research-query"


async def test_a_task_required_tool_is_listed_as_callable_and_answers_mcp_and_rest_callers() -> None:
    requires_everything()
    asked: list[str] = []

    async def elicit(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"interpretation": "the chosen one"})

    with running(hub_app({"ev": everything_stdio()})) as url:
        async with mcp_client(f"{url}/mcp", elicitation_callback=elicit) as client:
            listed = {t.name: t for t in (await client.list_tools()).tools}[TOOL]
            plain = await client.call_tool(TOOL, {"topic": "tides"})
            clarified = await client.call_tool(TOOL, {"topic": "python", "ambiguous": True})
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=60) as rest:
            answered = await rest.post(f"{url}/mcp/tools/call", json={"name": TOOL, "arguments": {"topic": "moss"}})
    assert listed.execution is not None and listed.execution.task_support == "optional"  # plain calls work too
    assert not plain.is_error and "# Research Report: tides" in text_of(plain)
    assert "# Research Report: python (the chosen one)" in text_of(clarified)
    assert len(asked) == 1 and "python" in asked[0]
    assert answered.status_code == 200 and "# Research Report: moss" in answered.json()["content"][0]["text"]


def test_only_required_task_support_is_relaxed_to_optional_in_the_exposed_tool() -> None:
    def tool(support: Any) -> types.Tool:
        return types.Tool(name="t", input_schema={"type": "object"},
                          execution=types.ToolExecution(task_support=support))  # fmt: skip

    assert requires_task(tool("required")) and not requires_task(tool("optional")) and not requires_task(None)
    exposed = without_task_requirement(tool("required"))
    assert exposed.execution is not None and exposed.execution.task_support == "optional"
    assert without_task_requirement(tool("optional")) == tool("optional")
