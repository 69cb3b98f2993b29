"""Result handles on SQLite and PostgreSQL: a 5 MB result read back in parts and by grep, scoping, expiry."""

from __future__ import annotations

import functools

import mcp_types as types
import pytest

from hub.catalog.results import (
    ResultError,
    ResultStore,
    handle_of,
    read_resource,
    shrink_result,
    shrink_text,
)
from tests.catalog.conftest import Clock

pytestmark = pytest.mark.anyio

NEEDLES = {12_345: "needle-Alpha", 41_000: "NEEDLE-beta", 59_999: "needle-gamma"}


@functools.cache
def big_text() -> str:
    """About 5.3 MB in 60,000 lines, some characters outside ASCII (offsets count characters, not bytes)."""
    lines = [f"row {i:06d} ✓ café {'x' * 66} {NEEDLES.get(i, '')}" for i in range(60_000)]
    return "\n".join(lines)


async def test_a_5_mb_result_reads_back_whole_in_parts(results: ResultStore) -> None:
    text = big_text()
    assert len(text) > 5_000_000
    stored = await results.put("key-a", text, server="files", tool="read_file")
    reader = ResultStore(results.store, read_limit=1_000_000)
    parts: list[str] = []
    offset = 0
    while offset < len(text):
        part = await reader.read("key-a", stored.handle, offset)
        header, _, body = part.partition("\n")
        assert header.startswith(f"[{stored.handle}: characters {offset}-{offset + len(body)} of {len(text)}")
        parts.append(body)
        offset += len(body)
    assert "".join(parts) == text
    assert (stored.size, stored.lines) == (len(text), 60_000)


async def test_a_part_at_any_offset_is_exactly_those_characters(results: ResultStore) -> None:
    text = big_text()
    stored = await results.put("key-a", text)
    for offset, limit in [(0, 10), (5_000_000, 100), (len(text) - 5, 50), (123_457, 20_000)]:
        part = await results.read("key-a", stored.handle, offset, limit)
        assert part.partition("\n")[2] == text[offset : offset + limit]
    assert (await results.read("key-a", stored.handle, len(text) - 5, 50)).split("\n")[0].endswith("this is the end]")


async def test_grep_finds_matching_lines_with_their_numbers_case_insensitively(results: ResultStore) -> None:
    stored = await results.put("key-a", big_text())
    found = await results.read("key-a", stored.handle, grep="needle")
    header, *lines = found.split("\n")
    assert header == f"[{stored.handle}: 3 lines containing 'needle'; no more matches]"
    assert [line.split(":")[0] for line in lines] == ["12346", "41001", "60000"]  # numbered from 1
    assert lines[1].endswith("NEEDLE-beta")
    after = await results.read("key-a", stored.handle, offset=41_001, grep="NEEDLE")
    assert after.split("\n")[1:] == [f"60000: {big_text().split(chr(10))[59_999]}"]


async def test_grep_output_is_bounded_and_says_how_to_continue(results: ResultStore) -> None:
    stored = await results.put("key-a", big_text())
    first = await results.read("key-a", stored.handle, limit=1_000, grep="café")
    header, *lines = first.split("\n")
    last = int(lines[-1].split(":")[0])
    assert len("\n".join(lines)) <= 1_000 and last == len(lines)
    assert header.endswith(f"more matches after line {last}; continue with offset={last}]")
    second = await results.read("key-a", stored.handle, offset=last, limit=1_000, grep="café")
    assert second.split("\n")[1].startswith(f"{last + 1}: row {last:06d}")


async def test_a_long_matching_line_is_shown_around_its_match(results: ResultStore) -> None:
    stored = await results.put("key-a", "a" * 10_000 + "FOUND" + "b" * 10_000)
    found = (await results.read("key-a", stored.handle, grep="found")).split("\n")[1]
    assert found.startswith("1: …a") and found.endswith("b…") and "FOUND" in found and len(found) < 420


async def test_another_key_cannot_read_a_handle_and_unknown_handles_say_so(results: ResultStore) -> None:
    stored = await results.put("key-a", "secret text")
    with pytest.raises(ResultError) as other:
        await results.read("key-b", stored.handle)
    with pytest.raises(ResultError) as unknown:
        await results.read("key-a", "res_0000")
    assert other.value.code == unknown.value.code == "not_found"


async def test_an_expired_handle_gives_a_clear_error_and_is_purged(results: ResultStore, clock: Clock) -> None:
    stored = await results.put("key-a", "old text")
    clock.now += 61
    with pytest.raises(ResultError) as expired:
        await results.read("key-a", stored.handle)
    assert expired.value.code == "expired" and "call the tool again" in expired.value.message
    await results.put("key-a", "new text")  # a put purges what expired
    with pytest.raises(ResultError) as gone:
        await results.read("key-a", stored.handle)
    assert gone.value.code == "not_found"


async def test_bad_offsets_are_refused(results: ResultStore) -> None:
    stored = await results.put("key-a", "0123456789")
    for offset, limit in [(-1, 5), (0, 0), (10, 5)]:
        with pytest.raises(ResultError) as bad:
            await results.read("key-a", stored.handle, offset, limit)
        assert bad.value.code == "invalid"


async def test_nul_characters_are_kept_as_replacement_characters(results: ResultStore) -> None:
    stored = await results.put("key-a", "a\x00b")
    assert (await results.read("key-a", stored.handle)).endswith("\na\ufffdb")


async def test_shrink_text_keeps_small_results_and_stores_large_ones_under_the_limit(results: ResultStore) -> None:
    assert await shrink_text("short", 2_000, results, "key-a") == ("short", None)
    text = big_text()
    shown, stored = await shrink_text(text, 2_000, results, "key-a", server="files", tool="read_file")
    assert stored is not None and len(shown) <= 2_000
    assert shown.startswith(text[:1_600]) and f'handle="{stored.handle}"' in shown and "5" in shown
    assert await results.read_all("key-a", stored.handle) == text


async def test_mcp_results_get_a_resource_link_readable_with_resources_read(results: ResultStore) -> None:
    image = types.ImageContent(type="image", data="aGk=", mime_type="image/png")
    text = big_text()
    result = types.CallToolResult(content=[types.TextContent(type="text", text=text), image])
    shrunk = await shrink_result(result, 20_000, results, "key-a", tool="files__read_file")
    head, kept, link = shrunk.content
    assert isinstance(head, types.TextContent) and len(head.text) <= 20_000
    assert kept == image
    assert isinstance(link, types.ResourceLink) and link.size == len(text) and link.mime_type == "text/plain"
    handle = handle_of(link.uri)
    assert handle is not None and link.uri == f"toolhub://results/{handle}"
    read = await read_resource(link.uri, "key-a", results)
    assert read.contents == [types.TextResourceContents(uri=link.uri, mime_type="text/plain", text=text)]
    with pytest.raises(ResultError):
        await read_resource(link.uri, "key-b", results)
    assert await shrink_result(result, len(text), results, "key-a") is result


def test_only_result_uris_have_a_handle() -> None:
    assert handle_of("toolhub://results/res_ab12") == "res_ab12"
    assert handle_of("toolhub://github/res_ab12") is None
    assert handle_of("toolhub://results/res_a/../b") is None
    assert handle_of("toolhub://results/other") is None
