"""Unit tests: exposed names and aliases, filtering, catalog order and routing, listing repair, MCP server config."""

from __future__ import annotations

import re
from typing import Any

import mcp_types as types
import pytest

from hub.accounts.auth import Principal
from hub.config import ConfigError, parse_config
from hub.mcp.catalog import Catalog, Listing, exposed_name, name_allowed, visible
from hub.mcp.hub import McpHub
from hub.mcp.sanitize import sanitize_listing

VALID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def tool(name: str, **extra: Any) -> types.Tool:
    return types.Tool(name=name, input_schema={"type": "object"}, **extra)


def test_a_valid_name_is_prefix_separator_original() -> None:
    assert exposed_name("time", "get_current_time") == "time__get_current_time"
    assert exposed_name("ev", "get-sum", "-") == "ev-get-sum"


@pytest.mark.parametrize("original", ["dotted.name", "space name", "ünïcode", "x" * 70, "a/b:c"])
def test_an_invalid_or_long_name_gets_a_stable_valid_alias(original: str) -> None:
    alias = exposed_name("srv", original)
    assert VALID.match(alias)
    assert alias == exposed_name("srv", original)
    assert alias != exposed_name("srv", original + "2")


def test_names_that_clean_to_the_same_text_get_different_aliases() -> None:
    assert exposed_name("s", "a.b") != exposed_name("s", "a:b")
    assert exposed_name("s", "a.b") != "s__a_b"


@pytest.mark.parametrize(
    ("name", "allowed", "disallowed", "expected"),
    [("get", None, None, True), ("get", ["get", "put"], None, True), ("del", ["get"], None, False),
     ("get_x", ["get_*"], None, True), ("get", None, ["get"], False), ("get_x", ["get_*"], ["*_x"], False)],
)  # fmt: skip
def test_allowed_and_disallowed_tools(name: str, allowed: list[str] | None, disallowed: list[str] | None,
                                      expected: bool) -> None:  # fmt: skip
    assert name_allowed(name, allowed, disallowed) is expected


def test_the_catalog_is_sorted_prefixed_filtered_and_keeps_the_original_in_meta() -> None:
    listings = [
        Listing("zed", "z", tools=[tool("b"), tool("a"), tool("hidden")], disallowed_tools=["hidden"]),
        Listing("alpha", "alpha", tools=[tool("run", meta={"upstream": 1})]),
    ]
    catalog = Catalog.build(listings)
    assert [t.name for t in catalog.tools] == ["alpha__run", "z__a", "z__b"]
    run = catalog.tools_by_name["alpha__run"]
    assert (run.server, run.original_name, run.qualified_name) == ("alpha", "run", "alpha__run")
    assert run.tool.meta == {"upstream": 1, "io.toolhub/original_name": "run", "io.toolhub/server": "alpha"}


def test_adding_a_server_never_renames_existing_tools() -> None:
    one = Catalog.build([Listing("a", "a", tools=[tool("x")])])
    two = Catalog.build([Listing("a", "a", tools=[tool("x")]), Listing("b", "b", tools=[tool("x")])])
    assert set(one.tools_by_name) <= set(two.tools_by_name)


def test_a_single_server_view_keeps_original_names() -> None:
    catalog = Catalog.build([Listing("ev", "ev", tools=[tool("get-sum")])], prefixed=False)
    info = catalog.tools_by_name["get-sum"]
    assert (info.name, info.qualified_name) == ("get-sum", "ev__get-sum")


def test_resource_uris_route_to_their_server_and_templates_by_longest_prefix() -> None:
    resource = types.Resource(name="r", uri="test://static/1")
    own = types.Resource(name="o", uri="test://own")
    short = types.ResourceTemplate(name="t", uri_template="test://{x}")
    long = types.ResourceTemplate(name="t2", uri_template="test://template/{id}/data")
    catalog = Catalog.build([Listing("a", "a", resources=[resource, own], templates=[short]),
                             Listing("b", "b", resources=[resource], templates=[long])])  # fmt: skip
    assert catalog.owner_of_uri("test://own") == ("a", "test://own")
    assert catalog.owner_of_uri("test://template/7/data") == ("b", "test://template/7/data")
    assert catalog.owner_of_uri("test://other") == ("a", "test://other")
    assert catalog.owner_of_uri("file:///x") is None


def test_a_uri_offered_by_two_servers_is_namespaced_for_both_and_maps_back() -> None:
    resource = types.Resource(name="r", uri="test://static/1")
    template = types.ResourceTemplate(name="t", uri_template="test://t/{id}")
    catalog = Catalog.build([Listing("a", "a", resources=[resource], templates=[template]),
                             Listing("b", "b", resources=[resource], templates=[template, template])])  # fmt: skip
    assert [(s, r.uri) for s, r in catalog.resources] == [("a", "toolhub://a/test://static/1"),
                                                          ("b", "toolhub://b/test://static/1")]  # fmt: skip
    assert [t.uri_template for _, t in catalog.templates] == ["toolhub://a/test://t/{id}", "toolhub://b/test://t/{id}"]
    assert catalog.owner_of_uri("toolhub://b/test://static/1") == ("b", "test://static/1")
    assert catalog.owner_of_uri("toolhub://a/test://t/9") == ("a", "test://t/9")
    assert catalog.owner_of_uri("toolhub://c/test://static/1") is None
    assert catalog.owner_of_uri("test://static/1") is None
    assert catalog.exposed_uri("b", "test://static/1") == "toolhub://b/test://static/1"
    assert catalog.exposed_uri("a", "test://t/9") == "toolhub://a/test://t/9"
    assert catalog.exposed_uri("a", "test://else") == "test://else"


def test_prompts_are_prefixed_like_tools() -> None:
    catalog = Catalog.build([Listing("ev", "e", prompts=[types.Prompt(name="simple-prompt")])])
    info = catalog.prompts_by_name["e__simple-prompt"]
    assert (info.server, info.original_name, info.prompt.name) == ("ev", "simple-prompt", "e__simple-prompt")


def test_visibility_follows_the_keys_servers_and_tools() -> None:
    assert visible(Principal(key_id=None), "a", "x")
    assert not visible(Principal(key_id="k", mcp_servers=frozenset({"b"})), "a", "x")
    assert visible(Principal(key_id="k", mcp_tools=frozenset({"a/x"})), "a", "x")
    assert not visible(Principal(key_id="k", mcp_tools=frozenset({"a/x"})), "a", "y")
    assert visible(Principal(key_id="k", mcp_tools=frozenset({"a/*"})), "a", "y")
    assert not visible(Principal(key_id="k", mcp_tools=frozenset({"a/*"})), "b", "y")


def test_a_valid_listing_is_left_untouched() -> None:
    result: dict[str, Any] = {"tools": [{"name": "a", "inputSchema": {"type": "object"}, "title": "A"}]}
    sanitize_listing(result, "2025-11-25", "s")
    assert result == {"tools": [{"name": "a", "inputSchema": {"type": "object"}, "title": "A"}]}


def test_an_invalid_listing_is_repaired_or_dropped_entry_by_entry() -> None:
    result: dict[str, Any] = {"tools": [
        {"name": "ok", "inputSchema": {"type": "object"}},
        {"name": "no_schema"},
        {"name": "bad_props", "inputSchema": {"type": "object", "properties": [], "required": "x"}},
        {"name": "bad_optional", "inputSchema": {"type": "object"}, "description": 3, "title": "kept",
         "outputSchema": {}},
        {"name": 5, "inputSchema": {"type": "object"}},
        {"name": "ok", "inputSchema": {"type": "object"}},
        "garbage",
    ], "nextCursor": "2"}  # fmt: skip
    sanitize_listing(result, "2025-11-25", "s")
    assert result == {"tools": [
        {"name": "ok", "inputSchema": {"type": "object"}},
        {"name": "no_schema", "inputSchema": {"type": "object"}},
        {"name": "bad_props", "inputSchema": {"type": "object"}},
        {"name": "bad_optional", "inputSchema": {"type": "object"}, "title": "kept"},
    ], "nextCursor": "2"}  # fmt: skip


def test_invalid_prompts_and_resources_are_dropped() -> None:
    result: dict[str, Any] = {"prompts": [{"name": "p"}, {"description": "nameless"}]}
    sanitize_listing(result, "2025-11-25", "s")
    assert result == {"prompts": [{"name": "p"}]}


@pytest.mark.parametrize(
    ("spec", "kind"),
    [({"command": "x"}, "stdio"), ({"url": "http://h/mcp"}, "http"), ({"url": "http://h/mcp/"}, "http"),
     ({"url": "http://h/sse"}, "sse"), ({"url": "http://h/x", "transport": "streamable_http"}, "http"),
     ({"url": "http://h/mcp", "transport": "sse"}, "sse")],
)  # fmt: skip
def test_the_transport_is_inferred_like_litellm(spec: dict[str, Any], kind: str) -> None:
    config = parse_config({"mcp_servers": {"s": spec}}, {})
    assert config.mcp_servers["s"].spec.kind == kind


@pytest.mark.parametrize(
    ("servers", "path"),
    [({"tools": {"command": "x"}}, "mcp_servers.tools"), ({"a.b": {"command": "x"}}, "mcp_servers.a.b"),
     ({"a": {}}, "mcp_servers.a"), ({"a": {"transport": "sse"}}, "mcp_servers.a"),
     ({"a": {"command": "x", "alias": "bad alias"}}, "mcp_servers.a.alias")],
)  # fmt: skip
def test_invalid_server_entries_fail_with_their_path(servers: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config({"mcp_servers": servers}, {})
    assert raised.value.path == path


def test_headers_from_the_environment_are_resolved_and_a_missing_one_disables_the_server() -> None:
    servers = {"a": {"url": "http://h/mcp", "headers": {"Authorization": "os.environ/TOKEN_A"}},
               "b": {"url": "http://h/mcp", "headers": {"Authorization": "os.environ/TOKEN_B"}}}  # fmt: skip
    config = parse_config({"mcp_servers": servers}, {"TOKEN_A": "Bearer secret"})
    assert config.mcp_servers["a"].spec.all_headers == {"Authorization": "Bearer secret"}
    assert config.mcp_servers["b"].missing_env == ("TOKEN_B",)


def test_two_servers_cannot_share_a_prefix() -> None:
    config = parse_config({"mcp_servers": {"a": {"command": "x"}, "b": {"command": "y", "alias": "a"}}}, {})
    with pytest.raises(ConfigError) as raised:
        McpHub(config.mcp_servers)
    assert raised.value.path == "mcp_servers.b.alias"
