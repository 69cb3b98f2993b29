"""A model call that fails inside the tool loop: the provider's error comes out as `RoundFailed`, unchanged but for
whether hub tools ran before it (hub/api/responses/endpoint.py retries a shortened conversation only when none had)."""

from __future__ import annotations

from typing import Any

import mcp_types
import pytest

from hub.accounts.auth import MASTER
from hub.loop.plan import plan_tool_loop
from hub.loop.run import LoopSettings, RoundFailed, complete_with_tools
from providers.base import ChatRequest, Deployment, ProviderError
from tests.fakes.scripted import FakeHub, ScriptedProvider, Turn, text_result

pytestmark = pytest.mark.anyio

DEPLOYMENT = Deployment(provider="openai", model="scripted", api_base="http://unused")
CHECK: Turn = ("Let me check the time.", [("time__get_current_time", {})])


async def get_current_time(args: dict[str, Any]) -> mcp_types.CallToolResult:
    return text_result('{"datetime": "2026-12-05T12:00:00+00:00"}')


async def failure(turns: list[Turn]) -> RoundFailed:
    """The error of a loop whose model answers `turns` and then fails (ScriptedProvider: "script exhausted")."""
    hub = FakeHub({"time__get_current_time": get_current_time})
    body = {"model": "m", "messages": [{"role": "user", "content": "Time?"}], "tools": [{"type": "mcp",
            "server_label": "time", "require_approval": "never"}]}  # fmt: skip
    plan = plan_tool_loop(body, (), hub, MASTER)
    assert plan is not None
    request = ChatRequest(body=body, deployment=DEPLOYMENT, request_id="")
    with pytest.raises(RoundFailed) as caught:
        await complete_with_tools(ScriptedProvider(turns), request, plan, hub, MASTER, LoopSettings())
    return caught.value


async def test_a_first_round_failure_says_no_hub_tool_ran_and_keeps_the_providers_error() -> None:
    error = await failure([])
    assert error.hub_tools_ran is False
    cause = error.__cause__
    assert isinstance(cause, ProviderError) and not isinstance(cause, RoundFailed)
    assert isinstance(error, ProviderError) and error.args == cause.args == ("script exhausted",)
    assert {k: v for k, v in vars(error).items() if k != "hub_tools_ran"} == vars(cause)


async def test_a_failure_after_a_round_of_hub_tools_says_they_ran() -> None:
    error = await failure([CHECK])
    assert error.hub_tools_ran is True
    assert (error.status_code, error.provider, error.message) == (502, "scripted", "script exhausted")
