"""hub/limits.py: the nesting and size limits on client JSON."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from hub.limits import MAX_JSON_DEPTH, JsonTooComplex, check_json, json_depth, json_too_deep, too_deep_path


def nested(depth: int) -> Any:
    value: Any = "x"
    for level in range(depth):
        value = {"k": value} if level % 2 else [value]
    return value


@pytest.mark.parametrize("depth", [0, 1, 2, 127, 128, 129, 200, 254, 255, 1000])
def test_json_too_deep_is_exact_at_the_limit_with_and_without_the_raw_bytes(depth: int) -> None:
    value = nested(depth)
    raw = orjson.dumps(value) if depth < 255 else None
    assert json_depth(value) == depth
    assert json_too_deep(value) is (depth > MAX_JSON_DEPTH)
    assert json_too_deep(value, raw=raw) is (depth > MAX_JSON_DEPTH)
    assert json_too_deep(value, 10) is (depth > 10)


def test_a_wide_shallow_value_with_many_brackets_is_not_too_deep() -> None:
    value = {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]} for _ in range(500)]}
    assert not json_too_deep(value, raw=orjson.dumps(value))


def test_the_path_names_where_the_nesting_is() -> None:
    body = {"model": "m", "tools": [{"function": {"name": "ok", "parameters": {}}},
                                    {"function": {"name": "f", "parameters": nested(200)}}]}  # fmt: skip
    assert too_deep_path(body) == "tools.[1].function.parameters"
    assert too_deep_path({"model": "m"}) is None


def test_check_json_refuses_too_deep_and_too_large_values() -> None:
    check_json({"a": "x" * 10}, what="The arguments of 'f'", max_bytes=100)
    with pytest.raises(JsonTooComplex) as deep:
        check_json(nested(300), what="The arguments of 'f'")
    with pytest.raises(JsonTooComplex) as large:
        check_json({"a": "x" * 200}, what="The arguments of 'f'", max_bytes=100)
    assert deep.value.message == "The arguments of 'f' nest objects and arrays more than 128 levels deep."
    assert large.value.message == "The arguments of 'f' take 208 bytes as JSON, over the limit of 100."
