"""`max_tool_result_chars` bounds a result's `structuredContent` as well as its text (hub/catalog/results.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest

from hub.catalog.results import ResultStore, handle_of, shrink_result
from hub.storage.sqlite import SqliteStore
from tests.mcp.conftest import hub_app, mcp_client, running, script_server

pytestmark = pytest.mark.anyio
LIMIT = 2_000


@pytest.fixture
async def results(tmp_path: Path) -> AsyncIterator[ResultStore]:
    store = SqliteStore(str(tmp_path / "toolhub.db"))
    await store.connect()
    await store.migrate()
    yield ResultStore(store)
    await store.aclose()


def text_result(text: str, structured: dict[str, Any] | None) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], structured_content=structured)


async def stored_text(results: ResultStore, shrunk: types.CallToolResult) -> str:
    link = shrunk.content[-1]
    assert isinstance(link, types.ResourceLink)
    handle = handle_of(link.uri)
    assert handle is not None
    return await results.read_all("key-a", handle)


def wire(result: types.CallToolResult) -> dict[str, Any]:
    return result.model_dump(by_alias=True, mode="json", exclude_unset=True)


async def test_a_string_result_repeated_as_structured_content_is_cut_to_the_same_head(results: ResultStore) -> None:
    text = "x" * 50_000
    shrunk = await shrink_result(text_result(text, {"result": text}), LIMIT, results, "key-a")
    head = shrunk.content[0]
    assert isinstance(head, types.TextContent) and len(head.text) <= LIMIT
    assert shrunk.structured_content == {"result": head.text}  # still an MCPServer string tool's output schema
    assert await stored_text(results, shrunk) == text
    assert len(json.dumps(wire(shrunk))) < 3 * LIMIT


async def test_large_structured_content_beside_a_short_text_goes_and_is_stored_after_it(results: ResultStore) -> None:
    rows = {"rows": [{"id": n, "name": f"row {n}"} for n in range(2_000)]}
    shrunk = await shrink_result(text_result("2000 rows", rows), LIMIT, results, "key-a")
    head = shrunk.content[0]
    assert isinstance(head, types.TextContent) and head.text.startswith("2000 rows\n{") and len(head.text) <= LIMIT
    assert shrunk.structured_content is None and "structuredContent" not in wire(shrunk)
    stored = await stored_text(results, shrunk)
    text, _, data = stored.partition("\n")
    assert (text, json.loads(data)) == ("2000 rows", rows)


async def test_structured_content_the_text_already_holds_as_json_is_not_stored_twice(results: ResultStore) -> None:
    rows = {"rows": [{"id": n} for n in range(2_000)]}
    text = json.dumps(rows, indent=2)  # what an MCPServer tool returning an object sends as its text
    shrunk = await shrink_result(text_result(text, rows), LIMIT, results, "key-a")
    assert shrunk.structured_content is None
    assert await stored_text(results, shrunk) == text


async def test_a_result_within_the_limit_is_left_as_it_is(results: ResultStore) -> None:
    result = text_result("short", {"result": "short"})
    assert await shrink_result(result, LIMIT, results, "key-a") is result


async def test_an_mcp_client_that_checks_output_schemas_takes_a_cut_string_result(tmp_path: Path) -> None:
    app = hub_app({"s": script_server("structured_server.py")}, database_url=f"sqlite:///{tmp_path / 'hub.db'}",
                  max_tool_result_chars=LIMIT)  # fmt: skip
    with running(app) as url:
        async with mcp_client(f"{url}/mcp") as client:
            result = await client.call_tool("s__text", {"n": 100_000})  # the SDK validates the output schema
    head, link = result.content
    assert isinstance(head, types.TextContent) and len(head.text) <= LIMIT and isinstance(link, types.ResourceLink)
    assert result.structured_content == {"result": head.text}
