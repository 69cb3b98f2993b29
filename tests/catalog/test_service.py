"""`CatalogService`, what the hooks call: listings by mode, loop definitions, per-view indexes, result fitting."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any, cast

import mcp_types as types
import orjson
import pytest

from hub.catalog.results import ResultError, ResultStore
from hub.catalog.service import CatalogService, CatalogSettings, catalog_extension
from hub.state import HubState
from tests.catalog.synthetic import FakeTool, catalog

pytestmark = pytest.mark.anyio


@dataclasses.dataclass(frozen=True)
class Info(FakeTool):
    """A `ToolInfo`-like tool: with its exposed MCP `Tool`."""

    @property
    def tool(self) -> types.Tool:
        return types.Tool(name=self.name, description=self.description, input_schema=dict(self.input_schema))


def infos() -> tuple[Info, ...]:
    return tuple(Info(**{f.name: getattr(t, f.name) for f in dataclasses.fields(t)}) for t in catalog())


async def _never(name: str, arguments: dict[str, Any]) -> types.CallToolResult:
    raise AssertionError(name)


def test_mcp_listing_by_mode_with_pinned_tools() -> None:
    tools = infos()
    service = CatalogService(CatalogSettings(mode="auto", always_expose=("time/*_time",)))
    assert [t.name for t in service.mcp_tools(tools[:40], None)] == [t.name for t in tools[:40]]
    listed = [t.name for t in service.mcp_tools(tools, None)]
    assert listed == ["hub__search_tools", "hub__describe_tool", "hub__call_tool", "time__convert_time",
                      "time__get_current_time"]  # no store: no hub__read_result  # fmt: skip


def test_loop_definitions_are_the_same_bytes_on_every_turn_in_search_mode() -> None:
    tools = catalog()
    service = CatalogService(CatalogSettings(mode="search", always_expose=("github__create_issue",)))
    first = service.loop_tools(tools)
    assert first is not None and orjson.dumps(service.loop_tools(list(reversed(tools)))) == orjson.dumps(first)
    assert [d["function"]["name"] for d in first][-1] == "github__create_issue"
    listed = CatalogService(CatalogSettings(mode="all")).loop_tools(tools[:3])
    assert [d["function"]["name"] for d in listed] == [t.name for t in tools[:3]]
    assert listed[0] == {"type": "function", "function": {"name": tools[0].name, "description": tools[0].description,
                                                          "parameters": tools[0].input_schema}}  # fmt: skip


async def test_all_mode_offers_read_result_once_the_conversation_holds_a_stored_result(results: ResultStore) -> None:
    tools = catalog()[:3]
    service = CatalogService(CatalogSettings(mode="all"), results)
    assert [d["function"]["name"] for d in service.loop_tools(tools)] == [t.name for t in tools]
    reading = service.loop_tools(tools, reading=True)
    assert [d["function"]["name"] for d in reading] == [*(t.name for t in tools), "hub__read_result"]
    shown, _ = await service.fit_text("z" * 30_000, 20_000, "key-a")
    assert service.holds_results([{"role": "user", "content": "hi"}, {"role": "tool", "content": shown}])
    assert service.holds_results([{"role": "tool", "content": [{"type": "text", "text": shown}]}])
    assert not service.holds_results([{"role": "tool", "content": "z" * 20_000}])
    assert not service.holds_results(None)


async def test_each_view_has_its_own_index_synced_with_its_catalog() -> None:
    service = CatalogService(CatalogSettings())
    tools = tuple(catalog())
    weather = tuple(dataclasses.replace(t, name=t.original_name) for t in tools if t.server == "weather")
    query = {"query": "forecast"}
    found = await service.call_meta("hub__search_tools", query, weather, weather, _never, "k", "weather")
    assert orjson.loads(found.content[0].text)["tools"][0]["name"] == "get_forecast"  # pyright: ignore[reportAttributeAccessIssue]
    found = await service.call_meta("hub__search_tools", {"query": "forecast"}, tools, tools, _never, "k")
    assert orjson.loads(found.content[0].text)["tools"][0]["name"] == "weather__get_forecast"  # pyright: ignore[reportAttributeAccessIssue]
    assert len(service.index("weather", weather)) == 10 and len(service.index(None, tools)) == 500


async def test_fit_text_stores_with_a_store_and_cuts_without_one(results: ResultStore) -> None:
    text = "x" * 50_000
    stored = CatalogService(CatalogSettings(), results)
    shown, removed = await stored.fit_text(text, 20_000, "key-a", server="files", tool="files__read_file")
    assert removed == 0 and "hub__read_result(handle=" in shown and len(shown) <= 20_000
    shown, removed = await stored.fit_text(text, 20_000, "key-a", tool="hub__read_result")
    assert removed == 30_000 and shown.endswith("[Toolhub cut this tool result: 30000 of 50000 characters removed]")
    shown, removed = await CatalogService(CatalogSettings()).fit_text(text, 20_000, "key-a")
    assert removed == 30_000


async def test_fit_result_links_large_mcp_results_and_resources_read_them(results: ResultStore) -> None:
    service = CatalogService(CatalogSettings(max_result_chars=1_000), results)
    big = types.CallToolResult(content=[types.TextContent(type="text", text="y" * 5_000)])
    fitted = await service.fit_result(big, "key-a", tool="files__read_file")
    link = fitted.content[-1]
    assert isinstance(link, types.ResourceLink)
    read = await service.read_resource(link.uri, "key-a")
    assert read is not None and read.contents[0].text == "y" * 5_000  # pyright: ignore[reportAttributeAccessIssue]
    assert await service.read_resource("file:///etc/passwd", "key-a") is None
    assert await CatalogService(CatalogSettings()).fit_result(big, "key-a") is big
    with pytest.raises(ResultError):
        await CatalogService(CatalogSettings()).read_resource(link.uri, "key-a")


async def test_the_extension_opens_the_service_after_the_hub_and_the_store(results: ResultStore) -> None:
    hub = SimpleNamespace(catalog_service=None)
    state = SimpleNamespace(config=SimpleNamespace(max_tool_result_chars=5_000, mcp_servers={}),
                            extras={"store": results.store, "mcp": hub})  # fmt: skip
    async with catalog_extension()(cast(HubState, state)):
        service = state.extras["catalog"]
        assert isinstance(service, CatalogService) and hub.catalog_service is service
        assert service.results is not None and service.results.read_limit == 4_800
    bare = SimpleNamespace(config=SimpleNamespace(max_tool_result_chars=5_000, mcp_servers={}), extras={})
    async with catalog_extension()(cast(HubState, bare)):
        assert bare.extras["catalog"].results is None


async def test_a_caller_without_the_catalog_at_hand_feeds_the_view_index_with_what_it_sees() -> None:
    service = CatalogService(CatalogSettings())
    tools = catalog()
    jira = [t for t in tools if t.server == "jira"]
    github = [t for t in tools if t.server == "github"]
    await service.call_meta("hub__search_tools", {"query": "issue"}, jira, None, _never, "a", "loop")
    found = await service.call_meta("hub__search_tools", {"query": "issue"}, github, None, _never, "b", "loop")
    names = [t["name"] for t in orjson.loads(found.content[0].text)["tools"]]  # pyright: ignore[reportAttributeAccessIssue]
    assert names and all(n.startswith("github__") for n in names)
    assert len(service.index("loop", [*jira, *github])) == 20


async def test_reconfigure_takes_the_new_mode_limit_and_ttl_for_the_next_call(results: ResultStore) -> None:
    tools = catalog()[:50]
    service = CatalogService(CatalogSettings(mode="all", max_result_chars=20_000), results)
    assert len(service.loop_tools(tools)) == 50
    service.reconfigure(CatalogSettings(mode="auto", threshold=10, max_result_chars=5_000, result_ttl=30))
    assert [d["function"]["name"] for d in service.loop_tools(tools)][0] == "hub__search_tools"
    assert (results.ttl, results.read_limit) == (30, 4_800)
    shown, _ = await service.fit_text("z" * 30_000, 5_000, "key-a")
    assert len(shown) < 6_000 and service.holds_results([{"role": "tool", "content": shown}])
