"""The cache key: what splits entries and what does not."""

from __future__ import annotations

from typing import Any

from hub.cache.keys import cache_key

USER = [{"role": "user", "content": "hi"}]


def key(body: dict[str, Any], alias: str = "m", namespace: str | None = None) -> str:
    return cache_key(alias, {"model": "m", "messages": USER, **body}, namespace)


def test_key_order_defaults_and_nulls_do_not_split_entries() -> None:
    base = key({"seed": 1, "max_tokens": 5})
    assert key({"max_tokens": 5, "seed": 1}) == base
    assert key({"seed": 1, "max_tokens": 5, "temperature": 1, "n": 1, "top_p": 1, "stop": None}) == base
    assert key({"seed": 1, "max_tokens": 5, "presence_penalty": 0, "parallel_tool_calls": True}) == base


def test_stream_user_metadata_and_cache_controls_are_not_in_the_key() -> None:
    base = key({})
    extras = {"stream": True, "stream_options": {"include_usage": True}, "user": "u", "metadata": {"a": 1}}
    assert key({**extras, "cache": {"no-store": True}}) == base


def test_everything_that_changes_the_answer_splits_entries() -> None:
    base = key({})
    changed = [
        key({"temperature": 0.5}),
        key({"seed": 2}),
        key({"max_tokens": 9}),
        key({"response_format": {"type": "json_object"}}),
        key({"tools": [{"type": "function", "function": {"name": "f"}}]}),
        key({"tool_choice": "required"}),
        key({}, alias="other"),
        cache_key("m", {"model": "m", "messages": [{"role": "user", "content": "hello"}]}),
    ]
    assert base not in changed
    assert len(set(changed)) == len(changed)


def test_one_text_part_equals_the_plain_string() -> None:
    parts = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    assert cache_key("m", {"model": "m", "messages": parts}) == key({})


def test_tool_choice_default_depends_on_tools() -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    assert key({"tools": tools, "tool_choice": "auto"}) == key({"tools": tools})
    assert key({"tool_choice": "none"}) == key({})


def test_the_namespace_prefixes_the_key() -> None:
    assert key({}).startswith("toolhub:")
    assert key({}, namespace="team-a").startswith("team-a:")
    assert key({}, namespace="team-a").split(":")[1] == key({}).split(":")[1]


def test_nulls_at_any_depth_of_a_message_do_not_split_entries() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    lean = [*USER, {"role": "assistant", "tool_calls": [call]}, {"role": "tool", "tool_call_id": "c1", "content": "1"}]
    sdk_style = [
        *USER,
        {"role": "assistant", "content": None, "refusal": None, "tool_calls": [{**call, "extra": None}]},
        {"role": "tool", "tool_call_id": "c1", "content": "1", "name": None},
    ]
    assert cache_key("m", {"model": "m", "messages": sdk_style}) == cache_key("m", {"model": "m", "messages": lean})
    deep_params = {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "strict": None}}}
    assert key(deep_params) == key({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}})


def test_a_text_part_with_null_fields_equals_the_plain_string_and_the_word_null_is_kept() -> None:
    parts = [{"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": None}]}]
    assert cache_key("m", {"model": "m", "messages": parts}) == key({})
    says_null = [{"role": "user", "content": 'null "type":"text"'}]
    assert cache_key("m", {"model": "m", "messages": says_null}) != key({})
    two_parts = [{"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "hi"}]}]
    assert cache_key("m", {"model": "m", "messages": two_parts}) != key({})


def test_a_text_part_without_string_text_is_kept_as_it_is_for_the_request_checks_to_refuse() -> None:
    keys = {key({"messages": [{"role": "user", "content": [part]}]}) for part in PARTS_WITHOUT_TEXT}
    assert len(keys) == len(PARTS_WITHOUT_TEXT) and key({}) not in keys


PARTS_WITHOUT_TEXT = ({"type": "text"}, {"type": "text", "text": 5})  # (a null `text` is the first: nulls go)


def test_whole_floats_and_integers_share_an_entry_at_every_depth() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "maximum": 10, "enum": [1, 2]}}}
    tools = [{"type": "function", "function": {"name": "f", "parameters": schema}}]
    as_floats = {"type": "object", "properties": {"n": {"type": "integer", "maximum": 10.0, "enum": [1.0, 2.0]}}}
    float_tools = [{"type": "function", "function": {"name": "f", "parameters": as_floats}}]
    ints = {"temperature": 0, "seed": 3, "max_tokens": 100, "logit_bias": {"50256": -100}, "tools": tools}
    floats = {
        "temperature": 0.0,
        "seed": 3.0,
        "max_tokens": 100.0,
        "logit_bias": {"50256": -100.0},
        "tools": float_tools,
    }
    assert key(floats) == key(ints)
    assert key({"seed": -0.0, "max_tokens": 1e16}) == key({"seed": 0, "max_tokens": 10**16})
    parts: Any = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u", "detail_px": 2.0}}]}]
    same: Any = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u", "detail_px": 2}}]}]
    assert cache_key("m", {"model": "m", "messages": parts}) == cache_key("m", {"model": "m", "messages": same})


def test_floats_that_are_not_whole_and_look_alike_strings_still_split_entries() -> None:
    assert key({"temperature": 0.5}) != key({"temperature": 0})
    assert key({"top_p": 0.05}) != key({"top_p": 0})
    assert key({"stop": ["1.0"]}) != key({"stop": ["1"]})  # a string is never a number
    assert key({"seed": 1e20}) != key({"seed": 1e19})
