"""Static content of the conformance fixture server: texts, media, schemas, resources and prompts.

Every text, URI and schema here is what a scenario of `@modelcontextprotocol/conformance` 0.1.16 asks for.
"""

from __future__ import annotations

import base64
import io
import json
import struct
import wave
import zlib
from typing import Any

import mcp_types as types
from mcp import MCPError

RESOURCE_NOT_FOUND = -32002


def _png_1x1_red() -> str:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1x1, 8-bit RGB
    pixels = zlib.compress(b"\x00\xff\x00\x00")  # filter byte + one red pixel
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    return base64.b64encode(png).decode()


def _wav_silence() -> str:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\x00\x00" * 80)  # 10 ms of silence
    return base64.b64encode(buf.getvalue()).decode()


PNG = _png_1x1_red()
WAV = _wav_silence()
NO_ARGS: dict[str, Any] = {"type": "object", "properties": {}}

USERNAME_EMAIL: dict[str, Any] = {
    "type": "object",
    "properties": {
        "username": {"type": "string", "description": "User's response"},
        "email": {"type": "string", "description": "User's email address"},
    },
    "required": ["username", "email"],
}

SEP1034_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "User name", "default": "John Doe"},
        "age": {"type": "integer", "description": "User age", "default": 30},
        "score": {"type": "number", "description": "User score", "default": 95.5},
        "status": {"type": "string", "description": "User status", "enum": ["active", "inactive", "pending"],
                   "default": "active"},
        "verified": {"type": "boolean", "description": "Verification status", "default": True},
    },
}  # fmt: skip


def _choices(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"const": const, "title": title} for const, title in pairs]


SEP1330_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
        "titledSingle": {"type": "string", "oneOf": _choices(("value1", "First Option"), ("value2", "Second Option"),
                                                             ("value3", "Third Option"))},
        "legacyEnum": {"type": "string", "enum": ["opt1", "opt2", "opt3"],
                       "enumNames": ["Option One", "Option Two", "Option Three"]},
        "untitledMulti": {"type": "array", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
        "titledMulti": {"type": "array", "items": {"anyOf": _choices(("value1", "First Choice"),
                                                                     ("value2", "Second Choice"),
                                                                     ("value3", "Third Choice"))}},
    },
}  # fmt: skip

JSON_SCHEMA_2020_12: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {"address": {"type": "object", "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
    "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
    "additionalProperties": False,
}


def text(value: str) -> types.TextContent:
    """A text content block."""
    return types.TextContent(type="text", text=value)


def image() -> types.ImageContent:
    """The 1x1 red PNG as an image content block."""
    return types.ImageContent(type="image", data=PNG, mime_type="image/png")


def audio() -> types.AudioContent:
    """The short silent WAV as an audio content block."""
    return types.AudioContent(type="audio", data=WAV, mime_type="audio/wav")


def embedded(uri: str, mime_type: str, body: str) -> types.EmbeddedResource:
    """An embedded text resource content block."""
    resource = types.TextResourceContents(uri=uri, mime_type=mime_type, text=body)
    return types.EmbeddedResource(type="resource", resource=resource)


# --- resources ----------------------------------------------------------------------------------------------------

RESOURCES = [
    types.Resource(uri="test://static-text", name="Static Text Resource", mime_type="text/plain",
                   description="A static text resource for testing"),
    types.Resource(uri="test://static-binary", name="Static Binary Resource", mime_type="image/png",
                   description="A static binary resource (1x1 PNG) for testing"),
    types.Resource(uri="test://watched-resource", name="Watched Resource", mime_type="text/plain",
                   description="A resource clients can subscribe to"),
]  # fmt: skip
TEMPLATE = types.ResourceTemplate(
    uri_template="test://template/{id}/data",
    name="Template Resource",
    description="A resource template with an id parameter",
    mime_type="application/json",
)
_TEMPLATE_PREFIX, _TEMPLATE_SUFFIX = "test://template/", "/data"


def resource_contents(uri: str) -> types.TextResourceContents | types.BlobResourceContents:
    """The contents of a static resource or a template instance; MCPError -32002 for any other URI."""
    if uri == "test://static-text":
        return types.TextResourceContents(uri=uri, mime_type="text/plain",
                                          text="This is the content of the static text resource.")  # fmt: skip
    if uri == "test://static-binary":
        return types.BlobResourceContents(uri=uri, mime_type="image/png", blob=PNG)
    if uri == "test://watched-resource":
        return types.TextResourceContents(uri=uri, mime_type="text/plain", text="Watched resource content")
    item_id = ""
    if uri.startswith(_TEMPLATE_PREFIX) and uri.endswith(_TEMPLATE_SUFFIX):
        item_id = uri[len(_TEMPLATE_PREFIX) : -len(_TEMPLATE_SUFFIX)]
    if item_id and "/" not in item_id:
        item = {"id": item_id, "templateTest": True, "data": f"Data for ID: {item_id}"}
        body = json.dumps(item, separators=(",", ":"))
        return types.TextResourceContents(uri=uri, mime_type="application/json", text=body)
    raise MCPError(code=RESOURCE_NOT_FOUND, message=f"Resource not found: {uri}", data={"uri": uri})


# --- prompts ------------------------------------------------------------------------------------------------------


def _arg(name: str, description: str) -> types.PromptArgument:
    return types.PromptArgument(name=name, description=description, required=True)


PROMPTS = [
    types.Prompt(name="test_simple_prompt", description="A simple prompt without arguments"),
    types.Prompt(name="test_prompt_with_arguments", description="A prompt with two required arguments",
                 arguments=[_arg("arg1", "First test argument"), _arg("arg2", "Second test argument")]),
    types.Prompt(name="test_prompt_with_embedded_resource", description="A prompt that embeds a resource",
                 arguments=[_arg("resourceUri", "URI of the resource to embed")]),
    types.Prompt(name="test_prompt_with_image", description="A prompt with image content"),
]  # fmt: skip

COMPLETIONS = {"arg1": ["paris", "park", "party"], "arg2": ["world", "word", "work"]}


def _user(content: types.ContentBlock) -> types.PromptMessage:
    return types.PromptMessage(role="user", content=content)


def prompt_messages(name: str, args: dict[str, str]) -> list[types.PromptMessage]:
    """The messages of one fixture prompt; MCPError -32602 for an unknown name."""
    if name == "test_simple_prompt":
        return [_user(text("This is a simple prompt for testing."))]
    if name == "test_prompt_with_arguments":
        return [_user(text(f"Prompt with arguments: arg1='{args.get('arg1', '')}', arg2='{args.get('arg2', '')}'"))]
    if name == "test_prompt_with_embedded_resource":
        uri = args.get("resourceUri") or "test://embedded-resource"
        return [_user(embedded(uri, "text/plain", "Embedded resource content for testing.")),
                _user(text("Please process the embedded resource above."))]  # fmt: skip
    if name == "test_prompt_with_image":
        return [_user(image()), _user(text("Please analyze the image above."))]
    raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown prompt: {name}")
