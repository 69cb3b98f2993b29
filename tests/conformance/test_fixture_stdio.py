"""The fixture server over stdio, as the hub launches it: the conformance runner itself only speaks HTTP."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator

import anyio
import mcp_types as types
import pytest
from mcp import ClientSession, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.conformance.fixture_data import RESOURCE_NOT_FOUND
from tests.support.servers import ROOT

FIXTURE = ROOT / "tests" / "conformance" / "fixture_server.py"
REQUIRED_TOOLS = {
    "test_simple_text", "test_image_content", "test_audio_content", "test_embedded_resource",
    "test_multiple_content_types", "test_tool_with_logging", "test_tool_with_progress", "test_error_handling",
    "test_sampling", "test_elicitation", "test_elicitation_sep1034_defaults", "test_elicitation_sep1330_enums",
    "test_reconnection", "json_schema_2020_12_tool",
}  # fmt: skip
REQUIRED_PROMPTS = {
    "test_simple_prompt", "test_prompt_with_arguments", "test_prompt_with_embedded_resource", "test_prompt_with_image",
}  # fmt: skip
pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]


class Recorder:
    """Collects the log, progress and resource-updated notifications the client receives."""

    def __init__(self) -> None:
        self.logs: list[str] = []
        self.progress: list[tuple[float, float | None]] = []
        self.updated: list[str] = []
        self.update_seen = anyio.Event()

    async def on_message(self, message: object) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            self.updated.append(str(message.params.uri))
            self.update_seen.set()

    async def on_log(self, params: types.LoggingMessageNotificationParams) -> None:
        self.logs.append(str(params.data))

    async def on_progress(self, progress: float, total: float | None, message: str | None) -> None:
        self.progress.append((progress, total))


@pytest.fixture
async def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def session(recorder: Recorder) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(command=sys.executable, args=[str(FIXTURE), "--stdio"])
    with anyio.fail_after(30):
        async with (
            stdio_client(params) as (read, write),
            ClientSession(
                read,
                write,
                read_timeout_seconds=10,
                logging_callback=recorder.on_log,
                message_handler=recorder.on_message,
            ) as client,
        ):
            await client.initialize()
            yield client


async def test_every_required_fixture_is_listed(session: ClientSession) -> None:
    tools = await session.list_tools()
    resources = await session.list_resources()
    templates = await session.list_resource_templates()
    prompts = await session.list_prompts()

    assert {t.name for t in tools.tools} == REQUIRED_TOOLS | {"trigger_resource_update"}
    assert all(t.description for t in tools.tools)
    assert {str(r.uri) for r in resources.resources} == {"test://static-text", "test://static-binary",
                                                         "test://watched-resource"}  # fmt: skip
    assert [t.uri_template for t in templates.resource_templates] == ["test://template/{id}/data"]
    assert {p.name for p in prompts.prompts} == REQUIRED_PROMPTS


async def test_tools_and_resources_answer_with_the_texts_the_suite_expects(session: ClientSession) -> None:
    text = await session.call_tool("test_simple_text", {})
    error = await session.call_tool("test_error_handling", {})
    template = await session.read_resource("test://template/123/data")
    prompt = await session.get_prompt("test_prompt_with_arguments", {"arg1": "hello", "arg2": "world"})
    completion = await session.complete(types.PromptReference(type="ref/prompt", name="test_prompt_with_arguments"),
                                        {"name": "arg1", "value": "par"})  # fmt: skip

    assert text.content == [types.TextContent(type="text", text="This is a simple text response for testing.")]
    assert error.is_error is True
    assert template.contents == [types.TextResourceContents(
        uri="test://template/123/data", mime_type="application/json",
        text='{"id":"123","templateTest":true,"data":"Data for ID: 123"}')]  # fmt: skip
    assert prompt.messages[0].content.text == "Prompt with arguments: arg1='hello', arg2='world'"  # type: ignore[union-attr]
    assert completion.completion.values == ["paris", "park", "party"]


async def test_progress_is_reported_and_log_level_is_honoured(session: ClientSession, recorder: Recorder) -> None:
    await session.call_tool("test_tool_with_progress", {}, progress_callback=recorder.on_progress)
    await session.call_tool("test_tool_with_logging", {})
    await session.set_logging_level("warning")
    await session.call_tool("test_tool_with_logging", {})

    assert recorder.progress == [(0, 100), (50, 100), (100, 100)]
    assert recorder.logs == ["Tool execution started", "Tool processing data", "Tool execution completed"]


async def test_unknown_names_are_protocol_errors(session: ClientSession) -> None:
    with pytest.raises(MCPError) as resource:
        await session.read_resource("test://nope")
    with pytest.raises(MCPError) as tool:
        await session.call_tool("no_such_tool", {})
    with pytest.raises(MCPError) as prompt:
        await session.get_prompt("no_such_prompt")

    assert resource.value.code == RESOURCE_NOT_FOUND
    assert tool.value.code == types.INVALID_PARAMS
    assert prompt.value.code == types.INVALID_PARAMS


async def test_resource_updates_reach_subscribers_only(session: ClientSession, recorder: Recorder) -> None:
    watched = {"uri": "test://watched-resource"}
    before = await session.call_tool("trigger_resource_update", watched)
    await session.subscribe_resource("test://watched-resource")
    during = await session.call_tool("trigger_resource_update", watched)
    with anyio.fail_after(5):
        await recorder.update_seen.wait()
    await session.unsubscribe_resource("test://watched-resource")
    after = await session.call_tool("trigger_resource_update", watched)

    assert recorder.updated == ["test://watched-resource"]
    assert before.content[0].text.startswith("Not subscribed")  # type: ignore[union-attr]
    assert during.content[0].text == "Sent notifications/resources/updated for test://watched-resource"  # type: ignore[union-attr]
    assert after.content[0].text.startswith("Not subscribed")  # type: ignore[union-attr]
