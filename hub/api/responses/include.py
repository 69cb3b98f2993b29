"""`include` and `truncation` on the translated path: what each value does here, or a 400 naming it.

- `message.output_text.logprobs`: the upstream is asked for `logprobs` (with `top_logprobs` if given) and its token
  log probabilities fill `output_text.logprobs`, streamed and not; providers without them (Anthropic, Gemini) drop
  the parameter and the list stays empty, as it is reported in `x-toolhub-dropped-params`.
- `reasoning.encrypted_content`: reasoning items carry the upstream's signed thinking (Anthropic `thinking_blocks`),
  opaque to the client, so a stateless client (`store: false`) can send them back and the upstream sees its own
  signatures again. Streamed, the blocks come in the chunks' `delta.thinking_blocks` (`gather`) and fill the
  reasoning item's `output_item.done` and `response.completed`; an upstream that gives none leaves it null.
- The other values OpenAI documents name outputs of hosted tools this gateway does not run (web search, file search,
  code interpreter, computer use) or input images it always keeps; they are accepted and change nothing.
- `truncation: "auto"`: when the upstream refuses the conversation as too long for its context window, the oldest
  turns are dropped (whole turns, a tool call never without its result) and the request is tried again,
  `MAX_TRUNCATIONS` upstream calls in all; never once a hub tool ran in the tool loop (the loop would start over
  and run it again): that refusal is returned. `"disabled"` (the default) returns the upstream's 400.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from hub.errors import BadRequest

JSON = dict[str, Any]
LOGPROBS = "message.output_text.logprobs"
ENCRYPTED = "reasoning.encrypted_content"
ACCEPTED = frozenset({LOGPROBS, ENCRYPTED, "message.input_image.image_url", "web_search_call.action.sources",
                      "web_search_call.results", "code_interpreter_call.outputs",
                      "computer_call_output.output.image_url", "file_search_call.results"})  # fmt: skip
PREFIX = "toolhub:v1:"
"""Marks the `encrypted_content` this gateway made (base64 JSON of the thinking blocks)."""
TRUNCATIONS = ("auto", "disabled")
MAX_TRUNCATIONS = 3
"""Upstream calls at most for one request with `truncation: "auto"` (the first one included)."""


def included(body: JSON) -> frozenset[str]:
    """The request's `include` values.

    Raises:
        BadRequest: `include` is not a list of the values OpenAI documents, or `truncation` is neither value.
    """
    truncation = body.get("truncation")
    if truncation is not None and truncation not in TRUNCATIONS:
        raise BadRequest("'truncation' must be 'auto' or 'disabled'.", param="truncation", code="invalid_value")
    value = body.get("include")
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):  # pyright: ignore[reportUnknownVariableType]
        raise BadRequest("'include' must be an array of strings.", param="include", code="invalid_type")
    for i, name in enumerate(value):  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
        if name not in ACCEPTED:
            supported = ", ".join(sorted(ACCEPTED))
            raise BadRequest(f"Invalid value for include[{i}]: {name!r}. Supported values are: {supported}.",
                             param=f"include[{i}]", code="invalid_value")  # fmt: skip
    return frozenset(value)  # pyright: ignore[reportUnknownArgumentType]


def encrypted(blocks: Any) -> str | None:
    """The `encrypted_content` for a turn's signed thinking blocks, None without any."""
    if not isinstance(blocks, list) or not blocks:
        return None
    return PREFIX + base64.urlsafe_b64encode(orjson.dumps(blocks)).decode()


def gather(blocks: list[JSON], fragments: Any) -> None:
    """Add a stream chunk's `delta.thinking_blocks` to the turn's `blocks`. Upstreams send a block whole (text and
    signature in one; `redacted_thinking` always whole) or, as LiteLLM does, in fragments: pieces of its text, then
    the signature that ends it."""
    for fragment in fragments if isinstance(fragments, list) else ():  # pyright: ignore[reportUnknownVariableType]
        if not isinstance(fragment, dict):
            continue
        last = blocks[-1] if blocks else None
        if fragment.get("type") != "thinking":  # pyright: ignore[reportUnknownMemberType]
            blocks.append({k: v for k, v in fragment.items() if k != "index"})  # pyright: ignore[reportUnknownVariableType]
            continue
        if last is None or last.get("type") != "thinking" or last.get("signature"):
            last = {"type": "thinking", "thinking": "", "signature": ""}
            blocks.append(last)
        last["thinking"] += str(fragment.get("thinking") or "")  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
        last["signature"] = str(fragment.get("signature") or "")  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]


def decrypted(content: Any) -> list[JSON] | None:
    """The thinking blocks in an `encrypted_content` this gateway made; None for anyone else's (OpenAI's own)."""
    if not isinstance(content, str) or not content.startswith(PREFIX):
        return None
    try:
        blocks = orjson.loads(base64.urlsafe_b64decode(content[len(PREFIX) :]))
    except (binascii.Error, ValueError):
        return None
    return [b for b in blocks if isinstance(b, dict)] if isinstance(blocks, list) else None  # pyright: ignore[reportUnknownVariableType]


def logprobs(choice: JSON) -> list[JSON]:
    """A chat choice's token log probabilities, as `output_text.logprobs` lists them."""
    raw = choice.get("logprobs")
    content = raw.get("content") if isinstance(raw, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    return [_token(t) for t in content if isinstance(t, dict)] if isinstance(content, list) else []  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]


def _token(token: JSON) -> JSON:
    top = [{"token": t.get("token", ""), "bytes": t.get("bytes") or [], "logprob": t.get("logprob", 0.0)}
           for t in token.get("top_logprobs") or () if isinstance(t, dict)]  # fmt: skip
    return {"token": token.get("token", ""), "bytes": token.get("bytes") or [], "logprob": token.get("logprob", 0.0),
            "top_logprobs": top}  # fmt: skip


def truncated(messages: list[JSON]) -> list[JSON] | None:
    """`messages` without the oldest half of the conversation (whole turns: it restarts at a user message), keeping
    the system messages in front; None when only the last user turn is left."""
    system = [m for m in messages if m.get("role") == "system"]
    rest = [m for m in messages if m.get("role") != "system"]
    starts = [i for i, m in enumerate(rest) if m.get("role") == "user" and i > 0]
    if not starts:
        return None
    cut = next((i for i in starts if i >= len(rest) // 2), starts[-1])
    return [*system, *rest[cut:]]
