"""A fake Gemini API (`generateContent`, `streamGenerateContent?alt=sse`) that enforces the real request rules.

The upstream model name is `gemini-<version>-<behaviour>`; the version decides the rules (3 and later validate
thought signatures), the behaviour the answer:

    text[-N]      "You said: <last user text>" in N stream chunks (default 3); the last chunk's usage differs
    tools         two parallel calls (get_weather, get_time) in one content, signed on the first; after the
                  function responses, a text that quotes them
    agent         thinking + a call to lookup_order, then (after its result) get_shipping, then a text answer;
                  every step signed
    loop          like agent, but calls the first and then the second declared function (for the hub tool loop)
    ids           like tools, but the calls carry Gemini's own ids (`gm_weather_1`, `gm/time#2`)
    first         calls the first declared function with no arguments
    noargs        one call to `ping` with no `args`
    huge          calls the first declared function with a 3 MB `content` argument (one 3 MB SSE line)
    thinking      a thought part then a text answer
    echo          a text describing each inlineData part of the last user content (mime, size, sha256)
    json          '{"city": "Paris", "temp_c": 21}'; 400 unless responseMimeType is application/json
    blocked       promptFeedback.blockReason SAFETY, no candidates
    safety        some text, then finishReason SAFETY
    maxtokens     some text, then finishReason MAX_TOKENS
    malformed     finishReason MALFORMED_FUNCTION_CALL with no content
    empty         a candidate without parts, finishReason STOP
    error-NNN     status NNN with Gemini's error body (error-400p: FAILED_PRECONDITION)
    midstream     two chunks, then an error object in the stream
    cut           two chunks, then the stream ends without a finishReason
    slow          50 chunks, 0.2 s apart

Rules enforced (texts as the real API words them): x-goog-api-key; known top-level, generationConfig and Part keys;
contents non-empty with roles user|model and non-empty parts; exactly one data field per Part; valid base64;
functionCall turns after a user or function-response turn; functionResponse `name`, count equal to the previous
turn's calls and matching ids; tool names; the OpenAPI Schema subset in `parameters` / `responseSchema`; tool config;
thinking config; for Gemini 3, the signature this fake issued (or the documented dummy) on the first
functionCall of every step of the current turn; and at most 100 requests per `batchEmbedContents`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import threading
from collections.abc import AsyncIterator
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

JSON = dict[str, Any]
API_KEY = "fake-gemini-key"
DUMMY_SIGNATURES = {base64.b64encode(s).decode() for s in (b"skip_thought_signature_validator",
                                                           b"context_engineering_is_the_way_to_go")}  # fmt: skip
EMPTY_TEXT = ("Unable to submit request because it has an empty text parameter. Add a value to the parameter and "
              "try again.")  # fmt: skip
MISSING_SIGNATURE = (
    "Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, "
    "and missing thought_signature may lead to degraded model performance. Additional data, function call "
    "'default_api:{name}', position {position}."
)
MAX_EMBED_BATCH = 100
"""Gemini's cap on one `batchEmbedContents`; the text is the real API's (langchain-ai/langchainjs#4491)."""
TOO_MANY_EMBEDDINGS = "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch\n"
ERRORS = {
    "400": (400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
    "400p": (400, "FAILED_PRECONDITION", "User location is not supported for the API use."),
    "403": (403, "PERMISSION_DENIED", "The caller does not have permission"),
    "404": (404, "NOT_FOUND", "models/gemini-nope is not found for API version v1beta, or is not supported for "
                              "generateContent. Call ListModels to see the list of available models and their "
                              "supported methods."),
    "429": (429, "RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan and billing details. "
                                       "For more information on this error, head to: "
                                       "https://ai.google.dev/gemini-api/docs/rate-limits."),
    "500": (500, "INTERNAL", "An internal error has occurred. Please retry or report in "
                             "https://developers.generativeai.google/guide/troubleshooting"),
    "503": (503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
    "504": (504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}  # fmt: skip
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
HUGE = 3_000_000
PARALLEL = [("get_weather", {"city": "Paris"}, "gm_weather_1"), ("get_time", {"timezone": "UTC"}, "gm/time#2")]


class Invalid(Exception):
    """A request the real API refuses: status 400 and its message."""


def error_body(code: int, status: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "status": status}}, code)


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


class FakeGemini:
    """The fake server. `requests` holds every body; `signatures_seen` the (signature, kind) pairs validated."""

    def __init__(self) -> None:
        self.requests: list[JSON] = []
        self.headers: list[dict[str, str]] = []
        self.issued: dict[str, str] = {}
        self.signatures_seen: list[tuple[str, str]] = []
        self.disconnects = 0
        self.stream_closed = threading.Event()
        self._counter = 0
        self.app = Starlette(routes=[Route("/v1beta/models/{target:path}", self.handle, methods=["POST"])])

    async def handle(self, request: Request) -> Response:
        model, _, method = request.path_params["target"].rpartition(":")
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            return error_body(400, "INVALID_ARGUMENT", "Invalid JSON payload received. Unexpected token.")
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        key = request.headers.get("x-goog-api-key")
        if key is None:
            return error_body(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers (callers without "
                              "established identity). Please use API Key or other form of API consumer identity to "
                              "call this API.")  # fmt: skip
        if key != API_KEY:
            return error_body(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.")
        if method == "batchEmbedContents":
            return batch_embed(model, body)
        if method not in ("generateContent", "streamGenerateContent"):
            return error_body(404, "NOT_FOUND", f"Method {method} is not found.")
        stream = method == "streamGenerateContent"
        if stream and request.query_params.get("alt") != "sse":
            return error_body(400, "INVALID_ARGUMENT", "fake: only alt=sse streams are served")
        version, behaviour = _parse_model(model)
        if behaviour.startswith("error-"):
            code, status, message = ERRORS[behaviour.removeprefix("error-")]
            return error_body(code, status, message)
        try:
            self._validate(body, version)
            chunks = self._script(behaviour, version, body)
        except Invalid as exc:
            return error_body(400, "INVALID_ARGUMENT", str(exc))
        if not stream:
            return JSONResponse(_merge(chunks))
        return StreamingResponse(self._stream(behaviour, chunks), media_type="text/event-stream")

    async def _stream(self, behaviour: str, chunks: list[JSON]) -> AsyncIterator[bytes]:
        self.stream_closed.clear()
        try:
            for n, chunk in enumerate(chunks):
                if behaviour == "slow" and n:
                    await anyio.sleep(0.2)
                if behaviour in ("midstream", "cut") and n == 2:
                    if behaviour == "midstream":
                        yield (
                            b'data: {"error": {"code": 503, "message": "The model is overloaded. Please try again '
                            b'later.", "status": "UNAVAILABLE"}}\r\n\r\n'
                        )
                    return
                yield b"data: " + json.dumps(chunk).encode() + b"\r\n\r\n"
        except anyio.get_cancelled_exc_class():
            self.disconnects += 1
            raise
        finally:
            self.stream_closed.set()

    # ---- validation -------------------------------------------------------------------------------------------

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

    # ---- answers ----------------------------------------------------------------------------------------------

    def _sign(self, name: str) -> str:
        self._counter += 1
        signature = base64.b64encode(f"fake-signature-{self._counter}-{name}".encode()).decode()
        self.issued[signature] = name
        return signature

    def _call(self, name: str, args: JSON | None, version: float, *, signed: bool, call_id: str | None = None) -> JSON:
        call: JSON = {"name": name}
        if args is not None:
            call["args"] = args
        if call_id:
            call["id"] = call_id
        part: JSON = {"functionCall": call}
        if signed and version >= 2.5:
            part["thoughtSignature"] = self._sign(name)
        return part

    def _script(self, behaviour: str, version: float, body: JSON) -> list[JSON]:
        contents = body["contents"]
        trailing = contents[-2:] if contents[-1]["role"] == contents[-2:][0]["role"] == "user" else contents[-1:]
        results = [p["functionResponse"] for c in trailing for p in c["parts"] if "functionResponse" in p]
        thoughts = bool(((body.get("generationConfig") or {}).get("thinkingConfig") or {}).get("includeThoughts"))
        if behaviour in ("tools", "ids") and not results:
            with_ids = behaviour == "ids"
            parts = [self._call(n, a, version, signed=i == 0, call_id=c if with_ids else None)
                     for i, (n, a, c) in enumerate(PARALLEL)]  # fmt: skip
            return _chunks([parts], "STOP", version)
        if behaviour in ("agent", "loop"):
            names = ("lookup_order", "get_shipping")
            if behaviour == "loop":
                declared = [d["name"] for t in body.get("tools", []) for d in t.get("functionDeclarations", [])]
                names = (declared[0], declared[1])
            return self._agent(contents, version, thoughts, names)
        if behaviour == "first":
            name = body["tools"][0]["functionDeclarations"][0]["name"]
            return _chunks([[self._call(name, {}, version, signed=True)]], "STOP", version)
        if behaviour == "huge":
            name = body["tools"][0]["functionDeclarations"][0]["name"]
            return _chunks([[self._call(name, {"content": "x" * HUGE}, version, signed=True)]], "STOP", version)
        if behaviour == "noargs":
            return _chunks([[self._call("ping", None, version, signed=True)]], "STOP", version)
        if behaviour == "json":
            if (body.get("generationConfig") or {}).get("responseMimeType") != "application/json":
                raise Invalid("fake: the json behaviour needs responseMimeType application/json")
            return _chunks([[{"text": '{"city": "Paris", '}], [{"text": '"temp_c": 21}'}]], "STOP", version)
        if behaviour == "blocked":
            return [{"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": [
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}]},
                "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9}}]  # fmt: skip
        if behaviour in ("safety", "maxtokens"):
            reason = "SAFETY" if behaviour == "safety" else "MAX_TOKENS"
            return _chunks([[{"text": "The answer is"}]], reason, version)
        if behaviour == "malformed":
            return [{"candidates": [{"content": {"role": "model"}, "finishReason": "MALFORMED_FUNCTION_CALL",
                                     "finishMessage": "Malformed function call: print(default_api.get_weather(city="
                                                      "'Paris')", "index": 0}],
                     "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9}}]  # fmt: skip
        if behaviour == "empty":
            usage = {"promptTokenCount": 9, "candidatesTokenCount": 0, "totalTokenCount": 9}
            return [{"candidates": [{"content": {"role": "model"}, "finishReason": "STOP", "index": 0}],
                     "usageMetadata": usage}]  # fmt: skip
        if behaviour == "thinking":
            return _chunks([[{"text": "Six times seven.", "thought": True}], [{"text": "42"}]], "STOP", version,
                           thoughts=17)  # fmt: skip
        text = _answer(behaviour, contents, results)
        pieces = 50 if behaviour == "slow" else int(behaviour.split("-")[1]) if behaviour.startswith("text-") else 3
        cuts = [round(n * len(text) / pieces) for n in range(pieces + 1)]
        return _chunks([[{"text": text[a:b]}] for a, b in zip(cuts, cuts[1:], strict=False) if a < b], "STOP", version)

    def _agent(self, contents: list[JSON], version: float, thoughts: bool, names: tuple[str, str]) -> list[JSON]:
        start = max(i for i, c in enumerate(contents) if c["role"] == "user" and any("text" in p for p in c["parts"]))
        steps = sum(1 for c in contents[start + 1 :] if c["role"] == "model")
        thought = [{"text": f"Step {steps + 1}: I need more data.", "thought": True}] if thoughts else []
        if steps == 0:
            return _chunks([thought, [self._call(names[0], {"order_id": "A1"}, version, signed=True)]],
                           "STOP", version, thoughts=40)  # fmt: skip
        if steps == 1:
            return _chunks([thought, [self._call(names[1], {"order_id": "A1"}, version, signed=True)]],
                           "STOP", version, thoughts=30)  # fmt: skip
        return _chunks([[{"text": "Order A1 ships tomorrow."}]], "STOP", version, thoughts=10)


def _parse_model(model: str) -> tuple[float, str]:
    match = re.match(r"^gemini-(\d+(?:\.\d+)?)-(.+)$", model)
    if match is None:
        return 3.0, "text"
    return float(match.group(1)), match.group(2)


def _answer(behaviour: str, contents: list[JSON], results: list[JSON]) -> str:
    if results:
        return "Results: " + "; ".join(f"{r['name']}={json.dumps(r['response'], sort_keys=True)}" for r in results)
    last = contents[-1]["parts"]
    if behaviour == "echo":
        described = []
        for part in last:
            if "inlineData" in part:
                data = base64.b64decode(part["inlineData"]["data"])
                described.append(f"{part['inlineData']['mimeType']} {len(data)} bytes "
                                 f"sha256:{hashlib.sha256(data).hexdigest()[:16]}")  # fmt: skip
            else:
                described.append("text")
        return ", ".join(described)
    texts = [p["text"] for p in last if "text" in p]
    return f"You said: {' '.join(texts)}" if texts else "Hello from the fake Gemini."


def _chunks(part_groups: list[list[JSON]], finish: str, version: float, *, thoughts: int = 0) -> list[JSON]:
    """Stream chunks, one per part group, cumulative usage, then a closing `{"text": ""}` chunk with the reason."""
    out: list[JSON] = []
    groups = [g for g in part_groups if g]
    for n, parts in enumerate(groups, 1):
        usage = {"promptTokenCount": 11, "candidatesTokenCount": n * 2, "totalTokenCount": 11 + n * 2 + thoughts}
        if thoughts:
            usage["thoughtsTokenCount"] = thoughts
        out.append({"candidates": [{"content": {"role": "model", "parts": parts}, "index": 0}], "usageMetadata": usage,
                    "modelVersion": "fake", "responseId": "fakeResponse1"})  # fmt: skip
    closing: JSON = {"text": ""}
    if version >= 3 and not any("functionCall" in p for g in groups for p in g):
        closing["thoughtSignature"] = base64.b64encode(b"fake-text-signature").decode()
    candidates = len(groups) * 2 + 1
    usage = {"promptTokenCount": 25, "candidatesTokenCount": candidates, "cachedContentTokenCount": 4,
             "totalTokenCount": 25 + candidates + thoughts}  # fmt: skip
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    out.append({"candidates": [{"content": {"role": "model", "parts": [closing]}, "finishReason": finish, "index": 0}],
                "usageMetadata": usage, "modelVersion": "fake", "responseId": "fakeResponse1"})  # fmt: skip
    return out


def _merge(chunks: list[JSON]) -> JSON:
    """The non-streamed response: the stream's parts in one content (adjacent texts joined), the last usage."""
    parts: list[JSON] = []
    for chunk in chunks:
        for candidate in chunk.get("candidates") or ():
            for part in (candidate.get("content") or {}).get("parts") or ():
                previous = parts[-1] if parts else None
                if (
                    previous is not None
                    and "text" in part
                    and "text" in previous
                    and previous.get("thought") == part.get("thought")
                    and "thoughtSignature" not in previous
                ):
                    previous["text"] += part["text"]
                    if "thoughtSignature" in part:
                        previous["thoughtSignature"] = part["thoughtSignature"]
                else:
                    parts.append(dict(part))
    last = chunks[-1]
    if "candidates" not in last:
        return last
    candidate = {**last["candidates"][0], "content": {"role": "model", **({"parts": parts} if parts else {})}}
    return {**last, "candidates": [candidate]}


def batch_embed(model: str, body: JSON) -> Response:
    """`:batchEmbedContents`: at most 100 requests, each naming `models/<model>`; vector i is [len(text), i, 0.5, ...]
    cut to `outputDimensionality` (default 4). Errors as Gemini's for too many requests, a missing text or a wrong
    model."""
    requests = body.get("requests") or []
    if len(requests) > MAX_EMBED_BATCH:
        return error_body(400, "INVALID_ARGUMENT", TOO_MANY_EMBEDDINGS)
    vectors: list[JSON] = []
    for i, one in enumerate(requests):
        if one.get("model") != f"models/{model}":
            return error_body(400, "INVALID_ARGUMENT", f"requests[{i}].model: model must be models/{model}")
        texts = [p.get("text") for p in (one.get("content") or {}).get("parts") or []]
        if not texts or not all(isinstance(t, str) and t for t in texts):
            return error_body(400, "INVALID_ARGUMENT", f"requests[{i}].content: text must be non-empty")
        size = int(one.get("outputDimensionality") or 4)
        vectors.append({"values": [float(len("".join(texts))), float(i), *([0.5] * (size - 2))][:size]})
    if not vectors:
        return error_body(400, "INVALID_ARGUMENT", "* BatchEmbedContentsRequest.requests: requests is required")
    return JSONResponse({"embeddings": vectors})
