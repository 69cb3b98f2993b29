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

The request rules it enforces live in tests/fakes/gemini_rules.py (`GeminiRules`); this module adds the API key
(x-goog-api-key) and at most 100 requests per `batchEmbedContents`.
"""

from __future__ import annotations

import base64
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

from tests.fakes.gemini_rules import (
    EMPTY_TEXT as EMPTY_TEXT,
    MISSING_SIGNATURE as MISSING_SIGNATURE,
    GeminiRules,
    Invalid as Invalid,
    validate_schema as validate_schema,
)

JSON = dict[str, Any]
API_KEY = "fake-gemini-key"
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
HUGE = 3_000_000
PARALLEL = [("get_weather", {"city": "Paris"}, "gm_weather_1"), ("get_time", {"timezone": "UTC"}, "gm/time#2")]


def error_body(code: int, status: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "status": status}}, code)


class FakeGemini(GeminiRules):
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
