"""Tool search: tokens, BM25F ranking, in-place updates, scopes, and quality on the 500-tool synthetic catalog."""

from __future__ import annotations

import dataclasses

from hub.catalog.index import ToolIndex
from hub.catalog.text import terms
from tests.catalog.synthetic import QUERIES, FakeTool, catalog


def _tool(name: str, description: str, server: str = "srv", **properties: str) -> FakeTool:
    schema = {"type": "object", "properties": {k: {"type": "string", "description": v} for k, v in properties.items()}}
    return FakeTool(f"{server}__{name}", server, name, description, schema)


def test_terms_split_snake_and_camel_case_stem_and_map_synonyms() -> None:
    assert terms("get_pullRequest-comments") == ["pull", "request", "pullrequest", "comment"]
    assert terms("listIssues") == ["list", "issue", "listissue"]
    assert terms("Remove the GitHub repos") == ["delete", "git", "hub", "github", "repository"]
    assert terms("HTTPServerError") == ["http", "server", "error", "httpservererror"]


def test_search_ranks_name_matches_above_description_matches() -> None:
    index = ToolIndex()
    index.sync([_tool("send_email", "Deliver a note."), _tool("notify", "Send an email to the on-call person.")])
    assert [hit.name for hit in index.search("send email")] == ["srv__send_email", "srv__notify"]


def test_search_matches_argument_names() -> None:
    index = ToolIndex()
    index.sync([_tool("run", "Run something.", timezone="IANA zone"), _tool("other", "Other thing.", path="file")])
    assert [hit.name for hit in index.search("timezone")] == ["srv__run"]


def test_a_query_equal_to_a_tool_name_ranks_that_tool_first() -> None:
    index = ToolIndex()
    tools = [_tool("query", "Run a query. Query query query."), _tool("list_tables", "List tables to query.")]
    index.sync(tools)
    assert index.search("list_tables")[0].name == "srv__list_tables"
    assert index.search("srv__list_tables")[0].name == "srv__list_tables"


def test_ties_are_broken_by_name_whatever_the_insertion_order() -> None:
    tools = [_tool(f"t{i}", "Same words here.", server=s) for i, s in enumerate("cab")]
    forward, backward = ToolIndex(), ToolIndex()
    forward.sync(tools)
    backward.sync(list(reversed(tools)))
    assert forward.search("same words") == backward.search("same words")
    assert [hit.name for hit in forward.search("same words")] == ["a__t1", "b__t2", "c__t0"]


def test_an_index_updated_in_place_ranks_exactly_as_one_built_from_scratch() -> None:
    tools = catalog()
    changed = [dataclasses.replace(t, description="Send a fax to a number.") if i % 7 == 0 else t
               for i, t in enumerate(tools[:400])]  # fmt: skip
    changed.append(_tool("fax_status", "Status of a sent fax."))
    updated = ToolIndex()
    updated.sync(tools)
    updated.sync(changed)
    fresh = ToolIndex()
    fresh.sync(changed)
    assert len(updated) == len(fresh) == 401
    for query in ["send a fax", "create github issue", "postgres query", "fax status", "weather"]:
        assert updated.search(query, 20) == fresh.search(query, 20)


def test_sync_with_the_same_sequence_object_is_free_and_prune_false_keeps_other_tools() -> None:
    tools = tuple(catalog())
    index = ToolIndex()
    index.sync(tools)
    index.sync(tools)
    assert len(index) == 500
    index.sync([_tool("extra", "An extra tool.")], prune=False)
    assert len(index) == 501 and "srv__extra" in index
    index.sync([_tool("extra", "An extra tool.")])
    assert len(index) == 1


def test_search_sees_only_the_tools_in_scope() -> None:
    index = ToolIndex()
    index.sync(catalog())
    in_scope = {"jira__create_issue", "jira__list_issues"}
    hits = index.search("create github issue", 10, within=in_scope)
    assert [hit.name for hit in hits] == ["jira__create_issue", "jira__list_issues"]
    assert index.search("github", 5, within=set()) == []


def test_nothing_matches_an_empty_or_unknown_query() -> None:
    index = ToolIndex()
    index.sync(catalog())
    assert index.search("", 5) == []
    assert index.search("zzqx", 5) == []
    assert index.search("github", 0) == []


def test_the_thirty_known_queries_find_their_tool_in_the_top_three_at_least_27_times() -> None:
    index = ToolIndex()
    tools = catalog()
    assert len(tools) == 500 and len({t.server for t in tools}) == 50
    index.sync(tools)
    found = [want for query, want in QUERIES if want in [hit.name for hit in index.search(query, 3)]]
    assert len(QUERIES) == 30
    assert len(found) >= 27, sorted({want for _, want in QUERIES} - set(found))
