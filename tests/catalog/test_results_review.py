"""Result store fixes from review: grep offsets are bounded by the line count, chunks are never left without a row."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import pytest

from hub.catalog.results import ResultError, ResultStore, _line_start  # pyright: ignore[reportPrivateUsage]
from tests.catalog.conftest import Clock

pytestmark = pytest.mark.anyio


async def _chunk_count(results: ResultStore) -> int:
    rows = await results.store.fetch("SELECT COUNT(*) AS n FROM toolhub_tool_result_chunks", [])
    return int(rows[0]["n"])


async def test_grep_from_a_line_past_the_end_is_refused(results: ResultStore) -> None:
    stored = await results.put("key-a", "one\ntwo needle\nthree")
    assert "2: two needle" in await results.read("key-a", stored.handle, 1, grep="needle")
    assert "0 lines" in await results.read("key-a", stored.handle, 3, grep="needle")
    with pytest.raises(ResultError) as bad:
        await results.read("key-a", stored.handle, 10**15, grep="needle")
    assert bad.value.code == "invalid"


def test_line_start_is_where_the_line_after_that_many_lines_begins() -> None:
    rng = random.Random(7)
    text = "".join(rng.choice("ab\n") for _ in range(2_000))
    starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
    for lines in range(len(starts) + 3):
        assert _line_start(text, lines) == (starts[lines] if lines < len(starts) else len(text) + 1)
    assert _line_start("", 0) == 0 and _line_start("", 1) == 1


async def test_a_put_whose_row_fails_leaves_no_chunks(results: ResultStore, monkeypatch: pytest.MonkeyPatch) -> None:
    execute = results.store.execute

    async def failing(text: str, args: Sequence[Any]) -> None:
        if text.startswith("INSERT INTO toolhub_tool_results "):
            raise RuntimeError("the row could not be written")
        await execute(text, args)

    monkeypatch.setattr(results.store, "execute", failing)
    with pytest.raises(RuntimeError):
        await results.put("key-a", "x" * 200_000)
    assert await _chunk_count(results) == 0


async def test_a_put_whose_chunks_fail_leaves_no_row(results: ResultStore, monkeypatch: pytest.MonkeyPatch) -> None:
    async def failing(text: str, rows: Sequence[Sequence[Any]]) -> None:
        raise RuntimeError("the chunks could not be written")

    monkeypatch.setattr(results.store, "execute_many", failing)
    with pytest.raises(RuntimeError):
        await results.put("key-a", "x" * 200_000)
    rows = await results.store.fetch("SELECT COUNT(*) AS n FROM toolhub_tool_results", [])
    assert int(rows[0]["n"]) == 0


async def test_purge_deletes_chunks_that_have_no_row(results: ResultStore) -> None:
    await results.store.execute(
        "INSERT INTO toolhub_tool_result_chunks (handle, seq, content) VALUES ($1, $2, $3)", ["res_orphan", 0, "lost"]
    )
    kept = await results.put("key-a", "kept")
    assert await _chunk_count(results) == 2  # a put never scans the chunk table for orphans...
    await results.purge_expired()  # ...the catalog's periodic purge does
    assert await _chunk_count(results) == 1
    assert (await results.read("key-a", kept.handle)).endswith("kept")


async def test_a_put_deletes_the_chunks_of_what_expired_with_its_row(results: ResultStore, clock: Clock) -> None:
    await results.put("key-a", "x" * 200_000)
    clock.now += results.ttl + 1
    fresh = await results.put("key-a", "fresh")
    assert await _chunk_count(results) == 1
    assert (await results.read("key-a", fresh.handle)).endswith("fresh")
