"""JSON Schema -> Gemini's OpenAPI `Schema` subset, and tool names Gemini accepts.

Why a sanitizer rather than `parametersJsonSchema`: the OpenAPI `parameters` form is accepted by every Gemini model
(2.x and 3.x, Developer API and Vertex), while the JSON-Schema subset behind `parametersJsonSchema` is documented
loosely (e.g. no siblings next to `$ref`) and newer. A whitelist is the safe side of "the whole request is rejected
at the first unknown key": every key we send is one the proto knows. What the subset cannot express (exclusive
bounds, non-string enums, formats, defaults, value types of free-form maps) is moved into `description`, so the
model still reads the constraint.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

JSON = dict[str, Any]

_COPY = ("minItems", "maxItems", "minProperties", "maxProperties", "minLength", "maxLength", "pattern", "minimum",
         "maximum")  # fmt: skip
_FORMATS = {"string": {"date-time", "enum"}, "number": {"float", "double"}, "integer": {"int32", "int64"}}
_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$")


class SchemaError(ValueError):
    """A schema cannot be expressed at all (e.g. a `$ref` that points nowhere)."""


def sanitize_schema(schema: Any, *, ordering: bool = False) -> JSON:
    """A Gemini `Schema` with the meaning of the JSON Schema `schema`; `ordering` adds `propertyOrdering`.

    Raises:
        SchemaError: an unresolvable `$ref`.
    """
    if not isinstance(schema, dict):
        return {}
    return _Sanitizer(schema, ordering).convert(schema, ("#",))


class _Sanitizer:
    def __init__(self, root: JSON, ordering: bool) -> None:
        self._root = root
        self._defs: Mapping[str, Any] = {**(root.get("definitions") or {}), **(root.get("$defs") or {})}
        self._ordering = ordering

    def _resolve(self, ref: str) -> tuple[str, JSON]:
        """(stack key, target) of a local `$ref`: `#`, `#/$defs/Name`, or any JSON pointer into the root."""
        if ref.startswith(("#/$defs/", "#/definitions/")) and ref.rsplit("/", 1)[-1] in self._defs:
            name = ref.rsplit("/", 1)[-1]  # the merged defs, as before: both spellings find either section
            return f"#/$defs/{name}", self._defs[name]
        if ref == "#":
            return "#", self._root
        target: Any = self._root if ref.startswith("#/") else None
        for token in ref[2:].split("/") if target is not None else ():
            token = token.replace("~1", "/").replace("~0", "~")
            if isinstance(target, dict) and token in target:
                target = target[token]
            elif isinstance(target, list) and token.isdigit() and int(token) < len(target):
                target = target[int(token)]
            else:
                target = None
                break
        if not isinstance(target, dict):
            raise SchemaError(f"cannot resolve $ref {ref!r}: only local references into this schema are supported")
        return ref, target

    def convert(self, node: Any, stack: tuple[str, ...]) -> JSON:
        if not isinstance(node, dict):
            return {}
        if "$ref" in node:
            return self._ref(node, stack)
        if "allOf" in node:
            node = self._flatten_all_of(node, stack)
        out: JSON = {}
        notes: list[str] = []
        nullable = self._type(node, out, notes) or node.get("nullable") is True
        nullable |= self._any_of(node, out, stack)
        self._enum(node, out, notes)
        self._object(node, out, notes, stack)
        self._array(node, out, stack)
        self._scalars(node, out, notes)
        if nullable:
            out["nullable"] = True
        _describe(out, node.get("description"), notes)
        return out

    def _ref(self, node: JSON, stack: tuple[str, ...]) -> JSON:
        key, target = self._resolve(str(node["$ref"]))
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        if key in stack:  # a recursive type cannot be written out in the OpenAPI subset
            out: JSON = {"type": "object"}
            name = "the root" if key == "#" else key.rsplit("/", 1)[-1]
            _describe(out, siblings.get("description") or target.get("description"),
                      [f"recursive: the same structure as {name}"])  # fmt: skip
            return out
        return self.convert({**target, **siblings}, (*stack, key))

    def _flatten_all_of(self, node: JSON, stack: tuple[str, ...]) -> JSON:
        merged: JSON = {k: v for k, v in node.items() if k != "allOf"}
        for member in node["allOf"] or ():
            while isinstance(member, dict) and "$ref" in member:
                key, target = self._resolve(str(member["$ref"]))
                if key in stack:
                    break
                member = {**target, **{k: v for k, v in member.items() if k != "$ref"}}
            if not isinstance(member, dict):
                continue
            for key, value in member.items():
                if key == "properties":
                    merged["properties"] = {**(merged.get("properties") or {}), **value}
                elif key == "required":
                    merged["required"] = [*(merged.get("required") or []), *value]
                else:
                    merged.setdefault(key, value)
        return merged

    def _type(self, node: JSON, out: JSON, notes: list[str]) -> bool:
        kind = node.get("type")
        if isinstance(kind, list):
            names = [str(k) for k in kind if k != "null"]  # pyright: ignore[reportUnknownVariableType]
            if len(names) == 1:
                out["type"] = names[0]
            elif names:
                out["anyOf"] = [{"type": n} for n in names]
            return "null" in kind
        if isinstance(kind, str):
            out["type"] = kind
        elif "properties" in node:
            out["type"] = "object"
        elif "items" in node or "prefixItems" in node:
            out["type"] = "array"
        elif "const" in node or "enum" in node:
            values = node["enum"] if "enum" in node else [node["const"]]
            out["type"] = _json_type(values[0]) if values else "string"
        return False

    def _any_of(self, node: JSON, out: JSON, stack: tuple[str, ...]) -> bool:
        members = node.get("anyOf") or node.get("oneOf")
        if not isinstance(members, list):
            return False
        nullable = False
        converted: list[JSON] = []
        for member in members:  # pyright: ignore[reportUnknownVariableType]
            if isinstance(member, dict) and member.get("type") == "null":
                nullable = True
                continue
            schema = self.convert(member, stack)
            if schema.pop("nullable", False):
                nullable = True
            converted.append(schema)
        if len(converted) == 1:
            for key, value in converted[0].items():
                out.setdefault(key, value)
        elif converted and all("type" in c or "anyOf" in c for c in converted):
            out["anyOf"] = converted
        return nullable

    def _enum(self, node: JSON, out: JSON, notes: list[str]) -> None:
        values = node["enum"] if "enum" in node else ([node["const"]] if "const" in node else None)
        if not isinstance(values, list) or not values:
            return
        if None in values:
            out["nullable"] = True
            values = [v for v in values if v is not None]  # pyright: ignore[reportUnknownVariableType]
        if not values:
            return
        if all(isinstance(v, str) for v in values) and out.get("type", "string") == "string":
            out["type"] = "string"
            out["enum"] = values
        else:  # Gemini enums are strings only; turning them into strings would change the argument types
            notes.append("allowed values: " + ", ".join(_dump(v) for v in values))

    def _object(self, node: JSON, out: JSON, notes: list[str], stack: tuple[str, ...]) -> None:
        properties = node.get("properties") if out.get("type") == "object" else None  # Gemini: OBJECT only
        if isinstance(properties, dict) and properties:
            out["properties"] = {str(k): self.convert(v, stack) for k, v in properties.items()}  # pyright: ignore[reportUnknownVariableType]
            required = [r for r in node.get("required") or () if r in properties]
            if required:
                out["required"] = required
            if self._ordering:
                out["propertyOrdering"] = list(out["properties"])
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and extra and not properties:
            value = self.convert(extra, stack)
            notes.append("an object mapping keys to values of type " + _dump(value.get("type", "any")))

    def _array(self, node: JSON, out: JSON, stack: tuple[str, ...]) -> None:
        if out.get("type") != "array":
            return
        prefix = node.get("prefixItems")
        items = node.get("items")
        if isinstance(items, list):  # draft 4 tuple form
            prefix, items = items, node.get("additionalItems")
        if isinstance(prefix, list) and prefix:
            members = [self.convert(p, stack) for p in prefix]  # pyright: ignore[reportUnknownVariableType]
            out["items"] = members[0] if len(members) == 1 else {"anyOf": members}
            out.setdefault("minItems", len(members))
            if items is False:
                out.setdefault("maxItems", len(members))
        elif isinstance(items, dict) and items:
            out["items"] = self.convert(items, stack)
        else:  # Gemini refuses an array without an item type
            out["items"] = {"type": "string"}

    def _scalars(self, node: JSON, out: JSON, notes: list[str]) -> None:
        for key in _COPY:
            if isinstance(node.get(key), (int, float, str)) and not isinstance(node.get(key), bool):
                out.setdefault(key, node[key])
        for key, word, bound in (("exclusiveMinimum", "greater", "minimum"), ("exclusiveMaximum", "less", "maximum")):
            value = node.get(key)
            if value is True and bound in node:  # draft 4 form
                notes.append(f"must be {word} than {_dump(node[bound])}")
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                out.setdefault(bound, value)
                notes.append(f"must be {word} than {_dump(value)}")
        if "multipleOf" in node:
            notes.append(f"a multiple of {_dump(node['multipleOf'])}")
        if node.get("uniqueItems") is True:
            notes.append("items must be unique")
        fmt = node.get("format")
        if isinstance(fmt, str):
            if fmt in _FORMATS.get(str(out.get("type")), ()):
                out["format"] = fmt
            else:
                notes.append(f"format: {fmt}")
        if "default" in node:
            notes.append(f"default: {_dump(node['default'])}")
        examples = node.get("examples")
        if isinstance(examples, list) and examples:
            notes.append(f"example: {_dump(examples[0])}")
        elif "example" in node:
            notes.append(f"example: {_dump(node['example'])}")


def _describe(out: JSON, description: Any, notes: list[str]) -> None:
    text = description if isinstance(description, str) else ""
    if notes:
        joined = "; ".join(notes)
        text = f"{text} ({joined})" if text else joined[0].upper() + joined[1:]
    if text:
        out["description"] = text


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


def _dump(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def gemini_name(name: str) -> str:
    """`name` if Gemini accepts it, else a deterministic valid name with a hash suffix (≤64 characters)."""
    if _NAME.match(name):
        return name
    clean = re.sub(r"[^a-zA-Z0-9_.:-]", "_", name)[:50]
    return f"_{clean}_{hashlib.sha256(name.encode()).hexdigest()[:10]}"


class ToolNames:
    """Client tool names <-> names sent to Gemini; the mapping is the same on every turn."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.to_gemini: dict[str, str] = {}
        self.from_gemini: dict[str, str] = {}
        for name in names:
            self.add(name)

    def add(self, name: str) -> str:
        """Register `name` and return its Gemini name.

        Raises:
            ValueError: two client names would reach Gemini under the same name.
        """
        mapped = self.to_gemini.get(name)
        if mapped is None:
            mapped = gemini_name(name)
            other = self.from_gemini.get(mapped)
            if other is not None and other != name:
                raise ValueError(f"tool names {other!r} and {name!r} collide once made valid for Gemini ({mapped!r})")
            self.to_gemini[name] = mapped
            self.from_gemini[mapped] = name
        return mapped

    def original(self, gemini: str) -> str:
        """The client's name for a name Gemini used."""
        return self.from_gemini.get(gemini, gemini)
