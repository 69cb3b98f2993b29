"""Gemini schema sanitizer: JSON-pointer and root `$ref`s, OBJECT-only properties, tuple items, `nullable`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from providers.gemini.schema import SchemaError, sanitize_schema
from tests.fakes.gemini_upstream import Invalid, validate_schema


def accepted(schema: dict[str, Any]) -> Any:
    """The sanitized schema, checked against the fake's copy of Gemini's Schema rules."""
    out = sanitize_schema(schema)
    validate_schema(out, "tools[0].function_declarations[0].parameters")
    assert "$ref" not in json.dumps(out)
    return out


def test_json_pointer_refs_into_the_schema_resolve_like_defs() -> None:
    home = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    out = accepted({"type": "object", "properties": {"home": home, "work": {"$ref": "#/properties/home"}},
                    "$schema": "http://json-schema.org/draft-07/schema#"})  # fmt: skip
    assert out["properties"]["work"] == out["properties"]["home"] == home
    escaped = accepted(
        {"type": "object", "properties": {"a/b": {"type": "integer"}, "c": {"$ref": "#/properties/a~1b"}}}
    )
    assert escaped["properties"]["c"] == {"type": "integer"}


def test_a_ref_to_the_root_is_a_recursive_object() -> None:
    children = {"type": "array", "items": {"$ref": "#"}}
    out = accepted({"type": "object", "properties": {"name": {"type": "string"}, "children": children}})
    items = out["properties"]["children"]["items"]
    assert items == {"type": "object", "description": "Recursive: the same structure as the root"}


@pytest.mark.parametrize("ref", ["#/properties/missing", "https://example.com/s.json", "#/properties/n/type"])
def test_refs_that_point_nowhere_in_the_schema_are_schema_errors(ref: str) -> None:
    with pytest.raises(SchemaError, match="cannot resolve"):
        sanitize_schema({"type": "object", "properties": {"n": {"type": "string"}, "x": {"$ref": ref}}})


def test_properties_and_required_are_kept_only_on_objects() -> None:
    notion = {"type": "object", "properties": {"data": {"type": "string", "properties": {"a": {"type": "string"}},
                                                        "required": ["a"]}}}  # fmt: skip
    assert accepted(notion)["properties"] == {"data": {"type": "string"}}
    with pytest.raises(Invalid, match="only allowed for OBJECT type"):
        validate_schema({"type": "string", "properties": {"a": {"type": "string"}}}, "p")


def test_draft_4_tuple_items_keep_their_item_types() -> None:
    out = accepted({"type": "object", "properties": {"p": {"type": "array", "items": [{"type": "number"},
                                                                                      {"type": "string"}],
                                                           "additionalItems": False}}})  # fmt: skip
    assert out["properties"]["p"] == {"type": "array", "items": {"anyOf": [{"type": "number"}, {"type": "string"}]},
                                      "minItems": 2, "maxItems": 2}  # fmt: skip


def test_an_openapi_nullable_is_copied_through() -> None:
    out = accepted({"type": "object", "properties": {"n": {"type": "string", "nullable": True}}})
    assert out["properties"] == {"n": {"type": "string", "nullable": True}}
