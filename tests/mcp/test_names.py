"""Name collisions in the catalog never drop or re-point a tool; `/mcp/<server>` aliases only invalid names."""

from __future__ import annotations

import hashlib
import re

import httpx2
import pytest

from hub.mcp.catalog import Catalog, Listing
from tests.mcp.conftest import MASTER_KEY, hub_app, mcp_client, running, script_server, text_of
from tests.mcp.test_catalog import tool

VALID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
pytestmark = pytest.mark.anyio
AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}
ALIAS_OF_X_Y = "x_y_" + hashlib.sha256(b"s__x.y").hexdigest()[:8]  # what `s` + `x.y` is exposed as when alone

CLASHES = [
    ("__", [Listing("a", "a", tools=[tool("b__c")]), Listing("a__b", "a__b", tools=[tool("c")])]),
    ("_", [Listing("postgres", "postgres", tools=[tool("db_list_tables")]),
           Listing("postgres_db", "postgres_db", tools=[tool("list_tables")])]),
    ("__", [Listing("s", "s", tools=[tool("x.y"), tool(ALIAS_OF_X_Y)])]),
]  # fmt: skip


def routes(catalog: Catalog) -> dict[str, tuple[str, str]]:
    return {name: (info.server, info.original_name) for name, info in catalog.tools_by_name.items()}


@pytest.mark.parametrize(("separator", "listings"), CLASHES)
def test_colliding_names_all_get_distinct_stable_aliases(separator: str, listings: list[Listing]) -> None:
    catalog = Catalog.build(listings, separator)
    offered = {(listing.server, t.name) for listing in listings for t in listing.tools}
    assert set(routes(catalog).values()) == offered  # nothing dropped
    assert all(VALID.match(name) for name in catalog.tools_by_name)
    reversed_order = [Listing(lst.server, lst.prefix, tools=list(reversed(lst.tools))) for lst in reversed(listings)]
    assert routes(Catalog.build(reversed_order, separator)) == routes(catalog)
    for info in catalog.tools:
        assert info.tool.meta is not None and info.tool.meta["io.toolhub/original_name"] == info.original_name


def test_adding_a_colliding_server_never_re_points_an_existing_name() -> None:
    before = routes(Catalog.build([Listing("a", "a", tools=[tool("b__c")])]))
    after = routes(Catalog.build([Listing("a", "a", tools=[tool("b__c")]), Listing("a__b", "a__b", tools=[tool("c")])]))
    assert all(after.get(name, route) == route for name, route in before.items())
    assert after.keys().isdisjoint({"a__b__c"})


def test_over_loopback_both_colliding_tools_are_listed_and_reach_their_own_server() -> None:
    servers = {"a": script_server("names_server.py", "b__c"), "a__b": script_server("names_server.py", "c")}
    with running(hub_app(servers)) as url:
        listed = httpx2.get(f"{url}/mcp/tools/list", headers=AUTH).json()["tools"]
        answers = {
            t["server"]: httpx2.post(f"{url}/mcp/tools/call", headers=AUTH, json={"name": t["name"]}).json()
            for t in listed
        }
    assert sorted((t["server"], t["original_name"]) for t in listed) == [("a", "b__c"), ("a__b", "c")]
    assert all(t["name"].startswith("a__b__c_") for t in listed)
    assert answers["a"]["content"][0]["text"] == "b__c called" and answers["a__b"]["content"][0]["text"] == "c called"


def test_a_single_server_view_aliases_only_invalid_names() -> None:
    listing = Listing("bad", "bad", tools=[tool("dotted.name"), tool("long_" + "n" * 95), tool("get-sum")])
    catalog = Catalog.build([listing], prefixed=False)
    by_original = {info.original_name: info for info in catalog.tools}
    assert by_original["get-sum"].name == "get-sum"
    assert all(VALID.match(name) for name in catalog.tools_by_name)
    assert by_original["dotted.name"].name.startswith("dotted_name_")
    assert by_original["dotted.name"].tool.meta == {
        "io.toolhub/original_name": "dotted.name",
        "io.toolhub/server": "bad",
    }


async def test_over_loopback_a_single_server_view_serves_and_calls_aliased_invalid_names() -> None:
    with running(hub_app({"bad": script_server("bad_tools.py", "3")})) as url:
        async with mcp_client(f"{url}/mcp/bad") as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            dotted = next(name for name in tools if name.startswith("dotted_name_"))
            called = await client.call_tool(dotted, {})
    assert {"t0000", "t0001", "t0002", "no_schema"} <= set(tools)
    assert all(VALID.match(name) for name in tools)
    assert text_of(called) == "called dotted.name"
    assert tools[dotted].meta is not None and tools[dotted].meta["io.toolhub/original_name"] == "dotted.name"
