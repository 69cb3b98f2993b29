"""The Gemini API's request rules, as the fake Gemini server (tests/fakes/gemini_upstream.py) enforces them.

Rules enforced (texts as the real API words them): known top-level, generationConfig and Part keys; contents non-empty
with roles user|model and non-empty parts; exactly one data field per Part; valid base64; functionCall turns after a
user or function-response turn; functionResponse `name`, count equal to the previous turn's calls and matching ids;
tool names; the OpenAPI Schema subset in `parameters` / `responseSchema`; tool config; thinking config; and for
Gemini 3, the signature the fake issued (or the documented dummy) on the first functionCall of every step of the
current turn. The API key and the `batchEmbedContents` cap are checked by the server itself.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

JSON = dict[str, Any]
DUMMY_SIGNATURES = {base64.b64encode(s).decode() for s in (b"skip_thought_signature_validator",
                                                           b"context_engineering_is_the_way_to_go")}  # fmt: skip
EMPTY_TEXT = ("Unable to submit request because it has an empty text parameter. Add a value to the parameter and "
              "try again.")  # fmt: skip
MISSING_SIGNATURE = (
    "Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, "
    "and missing thought_signature may lead to degraded model performance. Additional data, function call "
    "'default_api:{name}', position {position}."
)
TOP_KEYS = {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings",
            "cachedContent", "labels"}  # fmt: skip
GEN_KEYS = {"temperature", "topP", "topK", "candidateCount", "maxOutputTokens", "stopSequences", "seed",
            "presencePenalty", "frequencyPenalty", "responseMimeType", "responseSchema", "responseJsonSchema",
            "responseLogprobs", "logprobs", "responseModalities", "mediaResolution", "thinkingConfig"}  # fmt: skip
DATA_KEYS = {"text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode",
             "codeExecutionResult"}  # fmt: skip
META_KEYS = {"thought", "thoughtSignature", "videoMetadata", "partMetadata"}
SCHEMA_KEYS = {"type", "format", "title", "description", "nullable", "enum", "items", "minItems", "maxItems",
               "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength", "pattern",
               "minimum", "maximum", "anyOf", "propertyOrdering", "example", "default"}  # fmt: skip
TYPES = {"string", "number", "integer", "boolean", "array", "object", "null"}
NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$")


class Invalid(Exception):
    """A request the real API refuses: status 400 and its message."""


def _unknown(name: str, where: str | None = None) -> Invalid:
    at = f" at '{where}'" if where else ""
    return Invalid(f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.')


def _b64(value: Any, where: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Invalid(f"Invalid value at '{where}' (TYPE_BYTES), Base64 decoding failed for \"{value}\"") from exc


def validate_schema(schema: Any, where: str) -> None:
    """The OpenAPI `Schema` proto: unknown keys, list types, empty OBJECT properties, non-string enums."""
    if not isinstance(schema, dict):
        raise Invalid(f"Invalid value at '{where}' (type.googleapis.com/google.ai.generativelanguage.v1beta.Schema)")
    for key in schema:
        if key not in SCHEMA_KEYS:
            raise _unknown(key, where)
    kind = schema.get("type")
    if isinstance(kind, list):
        raise Invalid(f"Invalid JSON payload received. Unknown name \"type\" at '{where}': Proto field is not "
                      "repeating, cannot start list.")  # fmt: skip
    if kind is not None and str(kind).lower() not in TYPES:
        raise Invalid(f"Invalid value at '{where}.type' (type.googleapis.com/google.ai.generativelanguage.v1beta"
                      f'.Type), "{kind}"')  # fmt: skip
    kind = str(kind).lower() if kind else None
    if "properties" in schema:
        if kind is not None and kind != "object":
            raise Invalid(f"* GenerateContentRequest.{where}.properties: only allowed for OBJECT type\n")
        if not schema["properties"]:
            raise Invalid(f"* GenerateContentRequest.{where}.properties: should be non-empty for OBJECT type\n")
        for n, (_, sub) in enumerate(schema["properties"].items()):
            validate_schema(sub, f"{where}.properties[{n}].value")
    if "enum" in schema and (kind != "string" or not all(isinstance(v, str) for v in schema["enum"])):
        raise Invalid(f"* GenerateContentRequest.{where}.enum: only allowed for STRING type\n")
    if kind == "array" and "items" not in schema:
        raise Invalid(f"* GenerateContentRequest.{where}.items: missing field.\n")
    if "items" in schema:
        validate_schema(schema["items"], f"{where}.items")
    for n, member in enumerate(schema.get("anyOf") or ()):
        if "type" not in member and "anyOf" not in member:
            raise Invalid(
                f"* GenerateContentRequest.{where}.any_of[{n}]: schema didn't specify the schema type field\n"
            )
        validate_schema(member, f"{where}.any_of[{n}]")
    for name in schema.get("required") or ():
        if name not in (schema.get("properties") or {}):
            raise Invalid(f"* GenerateContentRequest.{where}.required[0]: property is not defined\n")


class GeminiRules:
    """Request validation for `FakeGemini`: `issued` maps the signatures it gave out to their function names, and
    `signatures_seen` records each (signature, "issued" | "dummy") a request carried."""

    issued: dict[str, str]
    signatures_seen: list[tuple[str, str]]

    def _validate(self, body: JSON, version: float) -> None:
        for key in body:
            if key not in TOP_KEYS:
                raise _unknown(key)
        contents = body.get("contents")
        if not contents:
            raise Invalid("* GenerateContentRequest.contents: contents is not specified\n")
        for i, content in enumerate(contents):
            self._validate_content(content, i, contents)
        for part in (body.get("systemInstruction") or {}).get("parts", [{"text": "x"}]):
            if not isinstance(part.get("text"), str):
                raise Invalid("* GenerateContentRequest.system_instruction.parts: only text parts are allowed\n")
        names = self._validate_tools(body.get("tools") or [])
        self._validate_tool_config(body.get("toolConfig"), names)
        self._validate_generation(body.get("generationConfig") or {}, version)
        if version >= 3:
            self._validate_signatures(contents)

    def _validate_content(self, content: JSON, i: int, contents: list[JSON]) -> None:
        for key in content:
            if key not in ("role", "parts"):
                raise _unknown(key, f"contents[{i}]")
        if content.get("role") not in ("user", "model"):
            raise Invalid("Please use a valid role: user, model.")
        parts = content.get("parts")
        if not parts:
            raise Invalid(f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.\n")
        for j, part in enumerate(parts):
            where = f"contents[{i}].parts[{j}]"
            for key in part:
                if key not in DATA_KEYS | META_KEYS:
                    raise _unknown(key, where)
            data = [k for k in part if k in DATA_KEYS]
            if not data:
                raise Invalid(f"* GenerateContentRequest.{where}.data: required oneof field 'data' must have one "
                              "initialized field\n")  # fmt: skip
            if len(data) > 1:
                raise Invalid(
                    f"Invalid JSON payload received. Oneof field 'data' is already set. Cannot set '{data[1]}'"
                )
            if part.get("text") == "" and "thoughtSignature" not in part:
                raise Invalid(EMPTY_TEXT)
            if "thoughtSignature" in part:
                _b64(part["thoughtSignature"], f"{where}.thought_signature")
            for k, media in enumerate((part.get("functionResponse") or {}).get("parts") or ()):
                inline = media.get("inlineData") or {}
                if not inline.get("mimeType") or not inline.get("data"):
                    raise Invalid(f"* GenerateContentRequest.{where}.function_response.parts[{k}].inline_data: "
                                  "mime_type and data are required\n")  # fmt: skip
                _b64(inline["data"], f"{where}.function_response.parts[{k}].inline_data.data")
            if "inlineData" in part:
                inline = part["inlineData"]
                if not inline.get("mimeType") or not inline.get("data"):
                    raise Invalid(f"* GenerateContentRequest.{where}.inline_data: mime_type and data are required\n")
                _b64(inline["data"], f"{where}.inline_data.data")
            if "functionResponse" in part and not part["functionResponse"].get("name"):
                raise Invalid(f"* GenerateContentRequest.{where}.function_response.name: Name cannot be empty.\n")
            if "functionCall" in part and not part["functionCall"].get("name"):
                raise Invalid(f"* GenerateContentRequest.{where}.function_call.name: Name cannot be empty.\n")
        calls = [p["functionCall"] for p in parts if "functionCall" in p]
        responses = [p["functionResponse"] for p in parts if "functionResponse" in p]
        if calls and (i == 0 or contents[i - 1]["role"] != "user"):
            raise Invalid("Please ensure that function call turn comes immediately after a user turn or after a "
                          "function response turn.")  # fmt: skip
        if responses:
            previous = contents[i - 1]["parts"] if i and contents[i - 1]["role"] == "model" else []
            previous_calls = [p["functionCall"] for p in previous if "functionCall" in p]
            if len(previous_calls) != len(responses):
                raise Invalid("Please ensure that the number of function response parts is equal to the number of "
                              "function call parts of the function call turn.")  # fmt: skip
            call_ids = {c.get("id") for c in previous_calls if c.get("id")}
            for response in responses:
                if call_ids and response.get("id") not in call_ids:
                    raise Invalid(f"Function response id \"{response.get('id')}\" does not match any function call id "
                                  "of the previous turn.")  # fmt: skip

    def _validate_tools(self, tools: list[JSON]) -> set[str]:
        names: set[str] = set()
        for t, tool in enumerate(tools):
            declarations: list[JSON] = tool.get("functionDeclarations") or []
            for d, declaration in enumerate(declarations):
                where = f"tools[{t}].function_declarations[{d}]"
                if not NAME.match(str(declaration.get("name"))):
                    raise Invalid(f"* GenerateContentRequest.{where}.name: Invalid function name. Must start with a "
                                  "letter or an underscore. Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots "
                                  "(.), colons (:), or dashes (-), with a maximum length of 64.\n")  # fmt: skip
                for key in declaration:
                    if key not in ("name", "description", "parameters", "parametersJsonSchema", "response", "behavior"):
                        raise _unknown(key, where)
                if "parameters" in declaration:
                    validate_schema(declaration["parameters"], f"{where}.parameters")
                names.add(declaration["name"])
        return names

    @staticmethod
    def _validate_tool_config(config: JSON | None, names: set[str]) -> None:
        calling = (config or {}).get("functionCallingConfig") or {}
        mode = calling.get("mode", "AUTO")
        if mode not in ("AUTO", "ANY", "NONE", "VALIDATED"):
            raise Invalid(f"Invalid value at 'tool_config.function_calling_config.mode', \"{mode}\"")
        allowed = calling.get("allowedFunctionNames")
        if allowed and mode not in ("ANY", "VALIDATED"):
            raise Invalid("* GenerateContentRequest.tool_config.function_calling_config.allowed_function_names: "
                          "allowed_function_names is only allowed when mode is ANY.\n")  # fmt: skip
        for name in allowed or ():
            if name not in names:
                raise Invalid(f"* GenerateContentRequest.tool_config.function_calling_config.allowed_function_names: "
                              f"function {name} is not declared.\n")  # fmt: skip

    @staticmethod
    def _validate_generation(config: JSON, version: float) -> None:
        for key in config:
            if key not in GEN_KEYS:
                raise _unknown(key, "generation_config")
        numbers: JSON = {}
        for key, proto in (("temperature", "TYPE_FLOAT"), ("topP", "TYPE_FLOAT"), ("maxOutputTokens", "TYPE_INT32")):
            try:  # proto JSON takes numbers and numeric strings
                numbers[key] = (float if proto == "TYPE_FLOAT" else int)(config.get(key, 1))
            except (TypeError, ValueError):
                raise Invalid(f"Invalid value at 'generation_config.{key}' ({proto}), \"{config[key]}\"") from None
        if not 0 <= numbers["temperature"] <= 2:
            raise Invalid("* GenerateContentRequest.generation_config.temperature: must be in [0.0, 2.0]\n")
        if len(config.get("stopSequences") or ()) > 5:
            raise Invalid("* GenerateContentRequest.generation_config.stop_sequences: at most 5 stop sequences\n")
        thinking = config.get("thinkingConfig") or {}
        if "thinkingLevel" in thinking and "thinkingBudget" in thinking:
            raise Invalid("You can only set only one of thinking budget and thinking level.")
        if "thinkingLevel" in thinking and version < 3:
            raise Invalid("Thinking level is not supported for this model.")
        if "responseSchema" in config:
            if config.get("responseMimeType") != "application/json":
                raise Invalid("* GenerateContentRequest.generation_config.response_mime_type: must be set to "
                              "application/json when response_schema is set\n")  # fmt: skip
            validate_schema(config["responseSchema"], "generation_config.response_schema")

    def _validate_signatures(self, contents: list[JSON]) -> None:
        start = max((i for i, c in enumerate(contents)
                     if c["role"] == "user" and any("text" in p for p in c["parts"])), default=-1)  # fmt: skip
        for i in range(start + 1, len(contents)):
            calls = [p for p in contents[i]["parts"] if "functionCall" in p]
            if contents[i]["role"] != "model" or not calls:
                continue
            first = calls[0]
            signature = first.get("thoughtSignature")
            if signature is None:
                raise Invalid(MISSING_SIGNATURE.format(name=first["functionCall"]["name"], position=i + 1))
            if signature in DUMMY_SIGNATURES:
                self.signatures_seen.append((signature, "dummy"))
            elif self.issued.get(signature) == first["functionCall"]["name"]:
                self.signatures_seen.append((signature, "issued"))
            else:
                raise Invalid("Corrupted thought signature.")
