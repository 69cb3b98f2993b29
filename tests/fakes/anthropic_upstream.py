"""A fake Anthropic Messages server that speaks the real wire format and enforces the real rules.

`POST /v1/messages` validates each request the way api.anthropic.com does (headers, `max_tokens`, roles, alternation,
non-empty text, tool_use/tool_result pairing and placement, id and name patterns, thinking rules and signatures) and
answers refusals with Anthropic's error texts and shapes. The model name picks the behaviour:

    claude-sonnet-4-5   "You said: <last user text>" (any unknown name too); streamed in 5 pieces
    claude-tools        text, then one tool_use per requested tool (up to two: {"city": "Paris"}, {"timezone":
                        "UTC"}); after tool results, a text answer quoting them
    claude-noargs       one tool_use whose input never arrives (only an empty input_json_delta)
    claude-think        a tool loop with thinking: step 0 thinking + tool_use(tools[0]); step 1 redacted_thinking +
                        thinking + tool_use(tools[1]); step 2 thinking + text. Thinking blocks only when enabled
    claude-json         JSON text: plain with `output_config.format`, in a code fence with a JSON system instruction
    claude-stop-REASON  text with stop_reason REASON (max_tokens, refusal, stop_sequence: `stop_sequence` names the
                        first of the request's `stop_sequences`, as the matched one)
    claude-slow         20 text pieces, 0.5 s apart
    claude-midstream-error  a text delta, then `event: error` (overloaded_error)
    claude-broken       a text delta, then the connection drops (no message_stop)
    error-NNN           status NNN with Anthropic's error body (400 401 403 404 413 429 500 529)

Usage is always `USAGE`: 10 input, 5 cache-read, 3 cache-creation and 7 output tokens.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import threading
from collections.abc import AsyncIterator
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

API_KEY = "sk-ant-fake"
VERSION = "2023-06-01"
KNOWN = set("""model messages max_tokens system stream temperature top_p top_k stop_sequences tools tool_choice thinking
    metadata output_config service_tier container cache_control context_management mcp_servers""".split())  # fmt: skip
USAGE = {"input_tokens": 10, "cache_read_input_tokens": 5, "cache_creation_input_tokens": 3, "output_tokens": 7}
NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
THINKING = ("thinking", "redacted_thinking")
SCRIPTED_INPUTS = [{"city": "Paris"}, {"timezone": "UTC"}]
ERRORS = {
    400: ("invalid_request_error", "max_tokens: 100000 > 64000, which is the maximum allowed number of output tokens "
          "for claude-sonnet-4-5-20250929"),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "model: claude-nope"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit "
          "(https://docs.claude.com/en/api/rate-limits); see the response headers for current usage."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}  # fmt: skip
DOCS = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
OVERLOADED = "Overloaded"
FORCED_TOOL_WITH_THINKING = "Thinking may not be enabled when tool_choice forces tool use."
TEMPERATURE_AND_TOP_P = "`temperature` and `top_p` cannot both be specified for this model. Please use only one."
ONE_SAMPLER = re.compile(r"claude-(sonnet-4-5|sonnet-4-6|opus-4-1|haiku-4-5)")
EMAIL_USER_ID = ("metadata.user_id: user_id appears to contain an email address. Please send a uuid or hash value "
                 "instead.")  # fmt: skip
TRAILING_WHITESPACE = "messages: final assistant content cannot end with trailing whitespace"


class Refusal(Exception):
    def __init__(self, message: str, status: int = 400, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.message, self.status, self.kind = message, status, kind


def error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> Response:
    request_id = "req_011C" + secrets.token_hex(8)
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}
    return JSONResponse(body, status, headers={"request-id": request_id, **(headers or {})})


class FakeAnthropic:
    """The fake server: `requests`/`headers` record what it received; `issued` the thinking it signed."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.refusals: list[str] = []
        self.issued: dict[str, str] = {}
        """Signature (or redacted data) -> the thinking text it signs."""
        self.disconnects = 0
        self.stream_closed = threading.Event()
        self._ids = itertools.count(1)
        self.app = Starlette(routes=[Route("/v1/messages", self.messages, methods=["POST"])])

    async def messages(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        try:
            self._check_headers(request)
            self._validate(body)
        except Refusal as exc:
            self.refusals.append(exc.message)
            return error(exc.status, exc.kind, exc.message)
        model: str = body["model"]
        if model.startswith("error-"):
            status = int(model.split("-")[1])
            kind, message = ERRORS[status]
            return error(status, kind, message, {"retry-after": "7"} if status == 429 else None)
        message = self._answer(body)
        if not body.get("stream"):
            return JSONResponse(message, headers={"request-id": "req_011Cfake"})
        return StreamingResponse(self._stream(message, model), media_type="text/event-stream")

    # -- validation, as the real API does it -------------------------------------------------------------------
    def _check_headers(self, request: Request) -> None:
        if request.headers.get("x-api-key") != API_KEY:
            raise Refusal("invalid x-api-key", 401, "authentication_error")
        if request.headers.get("anthropic-version") != VERSION:
            raise Refusal("anthropic-version: header is required")

    def _validate(self, body: dict[str, Any]) -> None:
        for key in body:
            if key not in KNOWN:
                raise Refusal(f"{key}: Extra inputs are not permitted")
        if not isinstance(body.get("max_tokens"), int):
            raise Refusal("max_tokens: Field required")
        for key in ("temperature", "top_p"):
            if not isinstance(body.get(key, 1), (int, float)) or isinstance(body.get(key), bool):
                raise Refusal(f"{key}: Input should be a valid number")
        if not 0 <= body.get("temperature", 1) <= 1:
            raise Refusal("temperature: Input should be less than or equal to 1")
        if "temperature" in body and "top_p" in body and ONE_SAMPLER.search(body["model"]):
            raise Refusal(TEMPERATURE_AND_TOP_P)
        for key in body.get("metadata") or {}:
            if key != "user_id":
                raise Refusal(f"metadata.{key}: Extra inputs are not permitted")
        if "@" in str((body.get("metadata") or {}).get("user_id", "")):
            raise Refusal(EMAIL_USER_ID)
        if any(not s.strip() for s in body.get("stop_sequences") or []):
            raise Refusal("stop_sequences: each stop sequence must contain non-whitespace")
        system = body.get("system")
        if isinstance(system, list):
            for block in system:
                self._check_text(block, "system")
        self._check_tools(body)
        self._check_thinking(body)
        self._check_output_config(body.get("output_config"))
        self._check_messages(body["messages"], body)

    def _check_tools(self, body: dict[str, Any]) -> None:
        names = []
        for i, tool in enumerate(body.get("tools") or []):
            if not NAME.match(tool.get("name", "")):
                raise Refusal(f"tools.{i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'")
            if not isinstance(tool.get("input_schema"), dict) or tool["input_schema"].get("type") != "object":
                raise Refusal(f"tools.{i}.custom.input_schema.type: Field required")
            names.append(tool["name"])
        choice = body.get("tool_choice")
        if choice is None:
            return
        if not names:
            raise Refusal("tool_choice: tool_choice may only be specified while providing tools.")
        if choice.get("type") not in ("auto", "any", "tool", "none"):
            raise Refusal("tool_choice.type: Input tag does not match any of the expected tags")
        if choice["type"] == "tool" and choice.get("name") not in names:
            raise Refusal(f"Tool '{choice.get('name')}' not found in provided tools")

    def _check_thinking(self, body: dict[str, Any]) -> None:
        thinking = body.get("thinking")
        if not thinking or thinking.get("type") != "enabled":
            return
        budget = thinking.get("budget_tokens", 0)
        if budget < 1024:
            raise Refusal("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
        if budget >= body["max_tokens"]:
            raise Refusal(f"`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our "
                          f"documentation at {DOCS}#max-tokens-and-context-window-size")  # fmt: skip
        if (body.get("tool_choice") or {}).get("type") in ("any", "tool"):
            raise Refusal(FORCED_TOOL_WITH_THINKING)
        if body.get("temperature", 1) != 1:
            raise Refusal(f"`temperature` may only be set to 1 when thinking is enabled. Please consult our "
                          f"documentation at {DOCS}")  # fmt: skip
        if "top_k" in body:
            raise Refusal("`top_k` is not supported when thinking is enabled.")

    def _check_output_config(self, config: Any) -> None:
        if config is None:
            return
        fmt = config.get("format") or {}
        if fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
            raise Refusal("output_config.format: expected {type: json_schema, schema: {...}}")

    def _check_text(self, block: dict[str, Any], where: str) -> None:
        if block.get("type") != "text":
            raise Refusal(f"{where}.type: Input should be 'text'")
        if not block.get("text"):
            raise Refusal("messages: text content blocks must be non-empty")
        if not block["text"].strip():
            raise Refusal("messages: text content blocks must contain non-whitespace text")

    def _check_messages(self, messages: list[dict[str, Any]], body: dict[str, Any]) -> None:
        if not messages:
            raise Refusal("messages: Field required")
        if messages[0].get("role") != "user":
            raise Refusal('messages: first message must use the "user" role')
        seen_ids: set[str] = set()
        for i, message in enumerate(messages):
            role = message.get("role")
            if role not in ("user", "assistant"):
                raise Refusal(f"messages.{i}.role: Input should be 'user' or 'assistant'")
            if i and messages[i - 1]["role"] == role:
                raise Refusal(f'messages: roles must alternate between "user" and "assistant", but found multiple '
                              f'"{role}" roles in a row')  # fmt: skip
            content = message.get("content")
            if not content and not (role == "assistant" and i == len(messages) - 1):
                raise Refusal(f"messages.{i}: all messages must have non-empty content except for the optional "
                              "final assistant message")  # fmt: skip
            if isinstance(content, list):
                for j, block in enumerate(content):
                    self._check_block(block, f"messages.{i}.content.{j}", role, seen_ids)
            if role == "assistant":
                self._check_pairing(messages, i)
        last = messages[-1]
        blocks = last["content"] if isinstance(last["content"], list) else [{"type": "text", "text": last["content"]}]
        if (
            last["role"] == "assistant"
            and blocks
            and blocks[-1].get("text", "x") != blocks[-1].get("text", "x").rstrip()
        ):
            raise Refusal(TRAILING_WHITESPACE)
        self._check_open_turn(messages, body)

    def _check_block(self, block: dict[str, Any], where: str, role: str, seen_ids: set[str]) -> None:
        kind = block.get("type")
        allowed = ("text", "image", "document", "tool_result") if role == "user" else ("text", "tool_use", *THINKING)
        if kind not in allowed:
            raise Refusal(f"{where}.type: '{kind}' blocks are not allowed in '{role}' messages")
        if kind == "text":
            self._check_text(block, where)
        elif kind == "image":
            source = block.get("source") or {}
            if source.get("type") == "base64" and source.get("media_type") not in IMAGE_TYPES:
                raise Refusal(f"{where}.source.base64.media_type: Input should be 'image/jpeg', 'image/png', "
                              "'image/gif' or 'image/webp'")  # fmt: skip
            if source.get("type") == "url" and not str(source.get("url", "")).startswith(("http://", "https://")):
                raise Refusal(f"{where}.source.url.url: invalid URL")
            if source.get("type") not in ("base64", "url"):
                raise Refusal(f"{where}.source: Input tag does not match any of the expected tags")
        elif kind == "tool_use":
            if not TOOL_ID.match(block.get("id", "")):
                raise Refusal(f"{where}.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'")
            if block["id"] in seen_ids:
                raise Refusal(f"messages: `tool_use` ids must be unique: {block['id']}")
            seen_ids.add(block["id"])
            if not NAME.match(block.get("name", "")) or not isinstance(block.get("input"), dict):
                raise Refusal(f"{where}.tool_use: invalid name or input")
        elif kind == "tool_result":
            if not TOOL_ID.match(block.get("tool_use_id", "")):
                raise Refusal(f"{where}.tool_result.tool_use_id: String should match pattern '^[a-zA-Z0-9_-]+$'")
            inners: list[dict[str, Any]] = block["content"] if isinstance(block.get("content"), list) else []
            for k, inner in enumerate(inners):
                if inner.get("type") not in ("text", "image", "document"):
                    raise Refusal(f"{where}.content.{k}.type: Input tag '{inner.get('type')}' does not match any "
                                  "of the expected tags: 'text', 'image', 'search_result', 'document'")  # fmt: skip
                self._check_block(inner, f"{where}.content.{k}", "user", seen_ids)
        elif kind == "thinking" and self.issued.get(block.get("signature", "")) != block.get("thinking"):
            raise Refusal(f"{where}: Invalid `signature` in `thinking` block")
        elif kind == "redacted_thinking" and block.get("data") not in self.issued:
            raise Refusal(f"{where}: Invalid `data` in `redacted_thinking` block")

    def _check_pairing(self, messages: list[dict[str, Any]], i: int) -> None:
        content = messages[i]["content"] if isinstance(messages[i]["content"], list) else []
        ids = [b["id"] for b in content if b.get("type") == "tool_use"]
        following = messages[i + 1]["content"] if i + 1 < len(messages) else []
        following = following if isinstance(following, list) else []
        results = [b.get("tool_use_id") for b in following if b.get("type") == "tool_result"]
        if ids and (i + 1 == len(messages) or set(ids) - set(results)):
            missing = ", ".join(sorted(set(ids) - set(results)))
            raise Refusal(f"messages.{i + 1}: `tool_use` ids were found without `tool_result` blocks immediately "
                          f"after: {missing}. Each `tool_use` block must have a corresponding `tool_result` block "
                          "in the next message.")  # fmt: skip
        if unexpected := [r for r in results if r not in ids]:
            raise Refusal(f"messages.{i + 1}.content.0: unexpected `tool_use_id` found in `tool_result` blocks: "
                          f"{unexpected[0]}. Each `tool_result` block must have a corresponding `tool_use` block in "
                          "the previous message.")  # fmt: skip
        kinds = [b.get("type") for b in following]
        if results and kinds[: len(results)] != ["tool_result"] * len(results):
            raise Refusal(f"messages.{i + 1}: `tool_result` blocks must come first in the user message, before "
                          "any other content.")  # fmt: skip

    def _check_open_turn(self, messages: list[dict[str, Any]], body: dict[str, Any]) -> None:
        if (body.get("thinking") or {}).get("type") != "enabled" or len(messages) < 2:
            return
        last = messages[-1]["content"]
        if not isinstance(last, list) or not any(b.get("type") == "tool_result" for b in last):
            return
        assistant = messages[-2]["content"]
        first = assistant[0].get("type") if isinstance(assistant, list) else "text"
        if first not in THINKING:
            raise Refusal(f"messages.{len(messages) - 2}.content.0.type: Expected 'thinking' or 'redacted_thinking', "
                          f"but found '{first}'. When 'thinking' is enabled, a final 'assistant' message must start "
                          "with a thinking block (preceeding the lastmost set of 'tool_use' and 'tool_result' blocks). "
                          "We recommend you include thinking blocks from previous turns. To avoid this requirement, "
                          f"disable 'thinking'. Please consult our documentation at {DOCS}")  # fmt: skip

    # -- answers -----------------------------------------------------------------------------------------------
    def _answer(self, body: dict[str, Any]) -> dict[str, Any]:
        model: str = body["model"]
        content, stop = self._content(body, model)
        if model.startswith("claude-stop-"):
            stop = model.removeprefix("claude-stop-")
        matched = (body.get("stop_sequences") or [None])[0] if stop == "stop_sequence" else None
        return {"id": f"msg_fake{next(self._ids):04d}", "type": "message", "role": "assistant", "model": model,
                "content": content, "stop_reason": stop, "stop_sequence": matched, "usage": dict(USAGE)}  # fmt: skip

    def _content(self, body: dict[str, Any], model: str) -> tuple[list[dict[str, Any]], str]:
        tools = [t["name"] for t in body.get("tools") or []]
        results = _tool_results(body["messages"][-1])
        if model == "claude-tools" and not results:
            calls = [self._tool_use(n, SCRIPTED_INPUTS[k]) for k, n in enumerate(tools[:2])]
            return [{"type": "text", "text": "Let me check."}, *calls], "tool_use"
        if model == "claude-noargs":
            return [self._tool_use(tools[0], {})], "tool_use"
        if model == "claude-think":
            return self._think(body, tools)
        if model == "claude-json":
            text = '{"city": "Paris", "temp_c": 21}'
            return [
                {"type": "text", "text": text if body.get("output_config") else f"```json\n{text}\n```"}
            ], "end_turn"
        if results:
            return [{"type": "text", "text": "Results: " + "; ".join(results)}], "end_turn"
        return [{"type": "text", "text": f"You said: {_last_text(body['messages'])}"}], "end_turn"

    def _think(self, body: dict[str, Any], tools: list[str]) -> tuple[list[dict[str, Any]], str]:
        step = _tool_step(body["messages"])
        on = (body.get("thinking") or {}).get("type") == "enabled"
        blocks: list[dict[str, Any]] = []
        if on and step == 1:
            data = "EmwKAhgB" + secrets.token_hex(12)
            self.issued[data] = ""
            blocks.append({"type": "redacted_thinking", "data": data})
        if on:
            blocks.append(self._thinking(f"Step {step}: I should {'answer' if step >= 2 else 'call a tool'}."))
        if step < 2:
            return [*blocks, self._tool_use(tools[step], SCRIPTED_INPUTS[step])], "tool_use"
        return [*blocks, {"type": "text", "text": "Paris is sunny at noon UTC."}], "end_turn"

    def _thinking(self, text: str) -> dict[str, Any]:
        signature = "EqQBCkgI" + secrets.token_urlsafe(24)
        self.issued[signature] = text
        return {"type": "thinking", "thinking": text, "signature": signature}

    def _tool_use(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return {"type": "tool_use", "id": f"toolu_01{secrets.token_hex(10)}", "name": name, "input": arguments}

    async def _stream(self, message: dict[str, Any], model: str) -> AsyncIterator[bytes]:
        delay = 0.5 if model == "claude-slow" else 0.0
        try:
            for n, (event, data) in enumerate(_events(message, 20 if delay else 5)):
                if model == "claude-broken" and n == 4:
                    raise ConnectionAbortedError("fake upstream drops the connection")
                if model == "claude-midstream-error" and n == 4:
                    yield _sse(
                        "error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
                    )
                    return
                if delay and event == "content_block_delta":
                    await anyio.sleep(delay)
                yield _sse(event, data)
        except anyio.get_cancelled_exc_class():
            self.disconnects += 1
            raise
        finally:
            self.stream_closed.set()


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _events(message: dict[str, Any], pieces: int) -> list[tuple[str, dict[str, Any]]]:
    """The real event sequence for a finished message."""
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None,
             "usage": {**message["usage"], "output_tokens": 1}}  # fmt: skip
    out: list[tuple[str, dict[str, Any]]] = [("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(message["content"]):
        kind = block["type"]
        empty = {"text": {"type": "text", "text": ""}, "tool_use": {**block, "input": {}},
                 "thinking": {"type": "thinking", "thinking": "", "signature": ""}}.get(kind, block)  # fmt: skip
        out.append(("content_block_start", {"type": "content_block_start", "index": index, "content_block": empty}))
        if index == 0:
            out.append(("ping", {"type": "ping"}))
        for delta in _deltas(block, pieces):
            out.append(("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}))
        out.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    stop = {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]}
    usage = {"output_tokens": message["usage"]["output_tokens"]}
    out.append(("message_delta", {"type": "message_delta", "delta": stop, "usage": usage}))
    out.append(("message_stop", {"type": "message_stop"}))
    return out


def _deltas(block: dict[str, Any], pieces: int) -> list[dict[str, Any]]:
    kind = block["type"]
    if kind == "text":
        return [{"type": "text_delta", "text": p} for p in _split(block["text"], pieces)]
    if kind == "thinking":
        return [*({"type": "thinking_delta", "thinking": p} for p in _split(block["thinking"], 3)),
                {"type": "signature_delta", "signature": block["signature"]}]  # fmt: skip
    if kind == "tool_use":
        raw = json.dumps(block["input"]) if block["input"] else ""
        return [{"type": "input_json_delta", "partial_json": p} for p in ["", *_split(raw, 3)]]
    return []


def _split(text: str, pieces: int) -> list[str]:
    step = max(1, -(-len(text) // pieces))
    return [text[i : i + step] for i in range(0, len(text), step)]


def _tool_results(message: dict[str, Any]) -> list[str]:
    content = message.get("content")
    if message.get("role") != "user" or not isinstance(content, list):
        return []
    out = []
    for block in content:
        if block.get("type") == "tool_result":
            inner = block.get("content", "")
            out.append(inner if isinstance(inner, str) else "".join(b.get("text", "") for b in inner))
    return out


def _tool_step(messages: list[dict[str, Any]]) -> int:
    """How many tool rounds the current turn has had (user tool-result messages since the last user text)."""
    step = 0
    for message in reversed(messages):
        if message["role"] == "user":
            if not _tool_results(message):
                break
            step += 1
    return step


def _last_text(messages: list[dict[str, Any]]) -> str:
    content = messages[-1].get("content")
    if isinstance(content, str):
        return content
    content = content if isinstance(content, list) else []
    texts = [b["text"] for b in content if b.get("type") == "text"]
    images = [b["source"]["type"] for b in content if b.get("type") == "image"]
    return " ".join(texts) + (f" [images: {', '.join(images)}]" if images else "")
