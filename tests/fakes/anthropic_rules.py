"""The Anthropic Messages API's request rules, as the fake server (tests/fakes/anthropic_upstream.py) enforces them.

`AnthropicRules` checks each request the way api.anthropic.com does: headers, `max_tokens`, samplers, metadata, roles,
alternation, non-empty text, image and document sources (base64 of an allowed media type, or an http(s) url),
tool_use/tool_result pairing and placement, id and name patterns, and the thinking rules and signatures. A broken rule
raises `Refusal` with Anthropic's own error text.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request

API_KEY = "sk-ant-fake"
VERSION = "2023-06-01"
KNOWN = set("""model messages max_tokens system stream temperature top_p top_k stop_sequences tools tool_choice thinking
    metadata output_config service_tier container cache_control context_management mcp_servers""".split())  # fmt: skip
NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
MEDIA_TYPES = {"image": "'image/jpeg', 'image/png', 'image/gif' or 'image/webp'", "document": "'application/pdf'"}
THINKING = ("thinking", "redacted_thinking")
DOCS = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
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


class AnthropicRules:
    """Request validation for `FakeAnthropic`; `issued` maps the thinking signatures (or redacted data) it gave out to
    the thinking text they sign."""

    issued: dict[str, str]

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
        elif kind in ("image", "document"):
            self._check_source(block.get("source") or {}, f"{where}.source", kind)
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

    def _check_source(self, source: dict[str, Any], where: str, kind: str) -> None:
        """An image takes a base64 (JPEG, PNG, GIF, WebP) or url source; a document also a text, content or file
        source, and its base64 source is a PDF. A url source is an http(s) URL, which Anthropic fetches."""
        tag = source.get("type")
        tags = ("base64", "url") if kind == "image" else ("base64", "text", "content", "url", "file")
        if tag not in tags:
            expected = ", ".join(f"'{t}'" for t in tags)
            raise Refusal(f"{where}: Input tag '{tag}' does not match any of the expected tags: {expected}")
        types = IMAGE_TYPES if kind == "image" else {"application/pdf"}
        if tag == "base64" and source.get("media_type") not in types:
            raise Refusal(f"{where}.base64.media_type: Input should be {MEDIA_TYPES[kind]}")
        if tag == "url" and not str(source.get("url", "")).startswith(("http://", "https://")):
            raise Refusal(f"{where}.url.url: invalid URL")

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
