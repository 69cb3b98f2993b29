"""Third-party clients of `/v1/responses`, run against the hub on loopback: the openai-agents SDK (its default model
class, OpenAIResponsesModel, with a function tool, streamed and not) and LangChain's ChatOpenAI with the Responses API.

Both install from PyPI with the dev extras; they never leave 127.0.0.1 (the agents SDK's trace export is disabled).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from openai import AsyncOpenAI

from hub.config import parse_config
from hub.server import build_app
from tests.fakes.openai_upstream import API_KEY, FakeOpenAI
from tests.support.servers import serve_app

agents = pytest.importorskip("agents", reason="openai-agents is in the dev extras: run scripts/setup")
langchain_openai = pytest.importorskip("langchain_openai", reason="langchain-openai is in the dev extras")

MASTER_KEY = "sk-toolhub-clients-test"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    fake = FakeOpenAI()
    with serve_app(fake.app) as upstream:
        models = [
            {"model_name": name, "litellm_params": {"model": f"openai/{name}", "api_base": f"{upstream}/v1",
                                                    "api_key": API_KEY}}
            for name in ("text", "agent-approve")
        ]  # fmt: skip
        database = f"sqlite:///{Path(tmp_path_factory.mktemp('clients')) / 'toolhub.db'}"
        config = {"model_list": models, "general_settings": {"master_key": MASTER_KEY, "database_url": database}}
        with serve_app(build_app(parse_config(config, {}))) as url:
            yield url


def _agent(client: AsyncOpenAI) -> Any:
    agents.set_tracing_disabled(True)
    seen: list[str] = []

    @agents.function_tool
    def describe_table(table: str) -> str:
        """Describe a table of the shop's database."""
        seen.append(table)
        return f"{table}: id, name, email"

    model = agents.OpenAIResponsesModel(model="agent-approve", openai_client=client)
    return agents.Agent(name="shop", instructions="Answer from the tools.", model=model, tools=[describe_table])


def test_the_agents_sdk_runs_a_function_tool_through_the_responses_api(gateway: str) -> None:
    async def run() -> Any:
        async with AsyncOpenAI(base_url=f"{gateway}/v1", api_key=MASTER_KEY, max_retries=0) as client:
            return await agents.Runner.run(_agent(client), "Which columns has users?")

    result = anyio.run(run)
    assert result.final_output == "Answer: users: id, name, email"
    kinds = [item.type for item in result.new_items]
    assert kinds == ["tool_call_item", "tool_call_output_item", "message_output_item"]


def test_the_agents_sdk_streams_the_same_run(gateway: str) -> None:
    async def run() -> tuple[str, list[str]]:
        async with AsyncOpenAI(base_url=f"{gateway}/v1", api_key=MASTER_KEY, max_retries=0) as client:
            streamed = agents.Runner.run_streamed(_agent(client), "Which columns has users?")
            names = [e.type async for e in streamed.stream_events()]
            return streamed.final_output, names

    final, names = anyio.run(run)
    assert final == "Answer: users: id, name, email"
    assert "raw_response_event" in names and "run_item_stream_event" in names


def test_langchain_chat_openai_with_the_responses_api(gateway: str) -> None:
    chat = langchain_openai.ChatOpenAI(
        model="text", base_url=f"{gateway}/v1", api_key=MASTER_KEY, use_responses_api=True, max_retries=0
    )
    try:
        answer = chat.invoke("hello")
        streamed = "".join(chunk.text for chunk in chat.stream("hello"))
    finally:
        chat.root_client.close()
    assert answer.text == "You said: hello"
    assert streamed == "You said: hello"
