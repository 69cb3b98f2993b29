"""Which mode a caller gets, and the meta-tool definitions: the same bytes every time."""

from __future__ import annotations

import orjson
import pytest

from hub.catalog.meta import (
    META_NAMES,
    client_limit,
    exposure,
    meta_functions,
    meta_tools,
    pinned,
)
from tests.catalog.synthetic import catalog


@pytest.mark.parametrize(
    ("mode", "threshold", "client", "count", "expected"),
    [
        ("all", 40, "cursor-vscode", 500, "all"),  # configured: obeyed even past the client's limit
        ("search", 40, None, 3, "search"),
        ("auto", 40, None, 40, "all"),
        ("auto", 40, None, 41, "search"),
        ("auto", 200, "Cursor", 41, "search"),  # the client's own limit is lower than the threshold
        ("auto", 200, "Visual Studio Code", 129, "search"),
        ("auto", 200, "Visual Studio Code", 128, "all"),
        ("auto", 200, "claude-ai", 150, "all"),  # Claude Desktop publishes no limit: the threshold applies
        ("auto", 200, "openai", 129, "search"),  # the tool loop passes the provider's name
        (None, 40, None, 5000, "all"),  # unset: everything, unless a known client would refuse it
        (None, 40, "cursor", 41, "search"),
        (None, 40, "cursor", 40, "all"),
        (None, 40, "Visual Studio Code - Insiders", 500, "search"),
    ],
)
def test_exposure(mode: str | None, threshold: int, client: str | None, count: int, expected: str) -> None:
    assert exposure(mode, threshold, client, count) == expected  # pyright: ignore[reportArgumentType]


def test_client_limits_match_client_info_names_case_insensitively() -> None:
    assert client_limit("Cursor") == 40
    assert client_limit("cursor-vscode") == 40
    assert client_limit("Visual Studio Code") == 128
    assert client_limit("GitHub Copilot") == 128
    assert client_limit("claude-ai") is None
    assert client_limit(None) is None


def test_meta_tool_definitions_are_byte_identical_on_every_call() -> None:
    first = orjson.dumps(meta_functions())
    assert orjson.dumps(meta_functions()) == first
    dumped = [t.model_dump_json(by_alias=True, exclude_none=True) for t in meta_tools()]
    assert [t.model_dump_json(by_alias=True, exclude_none=True) for t in meta_tools()] == dumped
    assert [t.name for t in meta_tools()] == list(META_NAMES)
    assert [f["function"]["name"] for f in meta_functions(results=False)] == list(META_NAMES[:3])


def test_meta_tool_definitions_cost_a_few_hundred_tokens() -> None:
    # ~4 characters per token: the four definitions are under 2,400 characters (~600 tokens)
    assert len(orjson.dumps(meta_functions())) < 2400


def test_pinned_tools_by_exposed_name_upstream_name_or_pattern_sorted_by_name() -> None:
    tools = catalog()
    found = pinned(tools, ["time/*_time", "github__create_issue", "slack/post_message", "nothing*"])
    assert [t.name for t in found] == [
        "github__create_issue",
        "slack__post_message",
        "time__convert_time",
        "time__get_current_time",
    ]
    assert pinned(tools, []) == []
