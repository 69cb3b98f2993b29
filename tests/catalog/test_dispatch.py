"""`handle_meta_call`: search, describe and call within the caller's tools; read stored results; readable errors."""

from __future__ import annotations

from typing import Any

import mcp_types as types
import orjson
import pytest

from hub.catalog.dispatch import handle_meta_call, summary
from hub.catalog.index import ToolIndex
from hub.catalog.results import ResultStore, shrink_text
from hub.mcp.errors import ToolNotPermitted, UpstreamUnavailable
from tests.catalog.synthetic import FakeTool, catalog

pytestmark = pytest.mark.anyio


class Recorder:
    """The hub's call: records what it was asked, answers with the tool's name, or raises what it is told to."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail = fail

    async def __call__(self, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        self.calls.append((name, arguments))
        if self.fail is not None:
            raise self.fail
        return types.CallToolResult(content=[types.TextContent(type="text", text=f"ran {name}")])


def _text(result: types.CallToolResult) -> str:
    item = result.content[0]
    assert isinstance(item, types.TextContent)
    return item.text


def _payload(result: types.CallToolResult) -> Any:
    assert not result.is_error, _text(result)
    return orjson.loads(_text(result))


async def test_search_returns_ranked_summaries_as_json() -> None:
    tools = catalog()
    result = await handle_meta_call("hub__search_tools", {"query": "create a github issue", "limit": 2}, tools,
                                    Recorder())  # fmt: skip
    payload = _payload(result)
    assert payload["query"] == "create a github issue"
    assert payload["tools"][0] == {
        "name": "github__create_issue",
        "server": "github",
        "description": "Create a new issue in GitHub.",
        "arguments": ["repo", "title", "body"],
    }
    assert len(payload["tools"]) == 2 and result.structured_content == payload


async def test_search_only_finds_the_tools_the_caller_may_see_with_a_shared_index() -> None:
    everything = catalog()
    index = ToolIndex()
    index.sync(everything)
    mine = [t for t in everything if t.server == "jira"]
    payload = _payload(await handle_meta_call("hub__search_tools", {"query": "github issue"}, mine, Recorder(),
                                              index=index))  # fmt: skip
    assert payload["tools"] and all(t["name"].startswith("jira__") for t in payload["tools"])
    assert len(index) == 500


async def test_describe_gives_the_full_schema_and_unknown_names_the_closest_ones() -> None:
    tools = catalog()
    payload = _payload(await handle_meta_call("hub__describe_tool", {"name": "time__convert_time"}, tools, Recorder()))
    assert payload["input_schema"]["required"] == ["time", "source_timezone", "target_timezone"]
    unknown = await handle_meta_call("hub__describe_tool", {"name": "time__convert"}, tools, Recorder())
    assert unknown.is_error and "Closest: time__convert_time" in _text(unknown)


async def test_call_forwards_a_visible_tool_to_the_hub() -> None:
    call = Recorder()
    arguments = {"name": "weather__get_forecast", "arguments": {"location": "Oslo"}}
    result = await handle_meta_call("hub__call_tool", arguments, catalog(), call)
    assert _text(result) == "ran weather__get_forecast"
    assert call.calls == [("weather__get_forecast", {"location": "Oslo"})]
    await handle_meta_call("hub__call_tool", {"name": "time__get_version"}, catalog(), call)
    assert call.calls[-1] == ("time__get_version", {})


async def test_call_never_reaches_a_tool_outside_the_callers_scope() -> None:
    call = Recorder()
    mine = [t for t in catalog() if t.server == "weather"]
    result = await handle_meta_call("hub__call_tool", {"name": "github__delete_repository"}, mine, call)
    assert result.is_error and _text(result).startswith("No tool named 'github__delete_repository'")
    assert call.calls == []


@pytest.mark.parametrize(
    ("name", "arguments", "says"),
    [
        ("hub__search_tools", {}, "'query' must be a non-empty string"),
        ("hub__search_tools", {"query": "x", "limit": 0}, "'limit' must be an integer from 1 to 50"),
        ("hub__search_tools", {"query": "x", "limit": True}, "'limit' must be an integer"),
        ("hub__call_tool", {"name": "weather__get_forecast", "arguments": [1]}, "'arguments' must be a JSON object"),
        ("hub__call_tool", {"name": "hub__search_tools"}, "is a hub meta-tool: call it directly"),
        ("hub__describe_tool", {"name": 3}, "'name' must be a non-empty string"),
        ("hub__read_result", {"handle": "res_1"}, "keeps no tool results"),
        ("hub__nothing", {}, "is not a hub meta-tool"),
    ],
)
async def test_bad_calls_are_error_results_the_model_can_read(name: str, arguments: dict[str, Any], says: str) -> None:
    call = Recorder()
    result = await handle_meta_call(name, arguments, catalog(), call)
    assert result.is_error and says in _text(result), _text(result)
    assert call.calls == []


@pytest.mark.parametrize("failure", [ToolNotPermitted("This key may not use it.", tool="x"),
                                     UpstreamUnavailable("The server is down.")])  # fmt: skip
async def test_a_hub_failure_of_the_called_tool_is_an_error_result(failure: Exception) -> None:
    result = await handle_meta_call("hub__call_tool", {"name": "time__get_version"}, catalog(), Recorder(failure))
    assert result.is_error and _text(result).startswith("The tool could not be called: ")


async def test_read_result_reads_the_callers_stored_result(results: ResultStore) -> None:
    text = "\n".join(f"line {i}" for i in range(5_000))
    shown, stored = await shrink_text(text, 1_000, results, "key-a")
    assert stored is not None and stored.handle in shown
    mine = (results, "key-a")
    part = await handle_meta_call("hub__read_result", {"handle": stored.handle, "offset": 7, "limit": 6}, [],
                                  Recorder(), results=mine)  # fmt: skip
    assert _text(part).endswith("\nline 1")
    grep = await handle_meta_call("hub__read_result", {"handle": stored.handle, "grep": "line 4999"}, [], Recorder(),
                                  results=mine)  # fmt: skip
    assert _text(grep).endswith("\n5000: line 4999")
    other = await handle_meta_call("hub__read_result", {"handle": stored.handle}, [], Recorder(),
                                   results=(results, "key-b"))  # fmt: skip
    assert other.is_error and "No stored result" in _text(other)


def test_summaries_cut_long_descriptions_and_mark_optional_arguments() -> None:
    tool = FakeTool("s__t", "s", "t", "d" * 400, {"properties": {"a": {}, "b": {}}, "required": ["a"]})
    found = summary(tool)
    assert len(found["description"]) == 300 and found["description"].endswith("…")
    assert found["arguments"] == ["a", "b?"]
