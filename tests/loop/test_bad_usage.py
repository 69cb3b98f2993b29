"""A tool-loop round whose usage cannot be read stops the loop with a 502 before the counts reach the record."""

from __future__ import annotations

from typing import Any

import pytest

from hub.accounts.auth import MASTER
from hub.accounts.usage import UsageRecord
from hub.loop.plan import plan_tool_loop
from hub.loop.run import LoopObserver, LoopSettings, complete_with_tools
from providers.base import JSON, ChatRequest, Deployment, ProviderError
from tests.fakes.scripted import FakeHub, ScriptedProvider

pytestmark = pytest.mark.anyio


class BadUsageModel(ScriptedProvider):
    """Answers at once, reporting `usage`."""

    def __init__(self, usage: Any) -> None:
        super().__init__(["Hello."])
        self.usage = usage

    async def complete(self, request: ChatRequest) -> JSON:
        return {**await super().complete(request), "usage": self.usage}


@pytest.mark.parametrize("usage", [{"prompt_tokens": -1_000_000, "completion_tokens": 5}, [1]])
async def test_unreadable_usage_is_a_502_and_nothing_is_added_to_the_record(usage: Any) -> None:
    hub, model = FakeHub({}), BadUsageModel(usage)
    body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}],
                            "tools": [{"type": "mcp", "server_label": "*", "require_approval": "never"}]}  # fmt: skip
    plan = plan_tool_loop(body, (), hub, MASTER)
    assert plan is not None
    record = UsageRecord("r", None, "m", "m", "openai", 0, False, 0.0)
    chat = ChatRequest(body=body, deployment=Deployment(provider="openai", model="m", api_base="http://unused"))
    with pytest.raises(ProviderError) as refused:
        await complete_with_tools(model, chat, plan, hub, MASTER, LoopSettings(), LoopObserver(usage=record.add_usage))
    assert (refused.value.status_code, refused.value.code) == (502, "upstream_bad_response")
    assert (record.prompt_tokens, record.completion_tokens) == (0, 0)
