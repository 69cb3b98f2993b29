"""An Anthropic Messages request as a Chat Completions body (pure functions).

Anthropic blocks map onto OpenAI parts: images become `image_url` parts (data URLs for base64), documents `file`
parts, `tool_use` blocks assistant `tool_calls` with the same ids, `tool_result` blocks `role: tool` messages placed
before the user's other content. Thinking blocks travel as `thinking_blocks` (LiteLLM's name), which the Anthropic
provider replays verbatim with their signatures. `thinking`, `top_k` and `cache_control` are passed on as they are:
the Anthropic provider uses them, the others drop what their upstream cannot take. LiteLLM's per-request router
options (`fallbacks`, `num_retries`, `timeout`, `mock_testing_fallbacks`) go to the router as on chat, and the
response cache's `cache` controls (`no-cache`, `no-store`, `ttl`, `s-maxage`, `namespace`) to the cache.
"""

from __future__ import annotations

from typing import Any

import orjson
from typing_extensions import TypedDict

from hub.api.locations import Locations, Origin
from hub.errors import BadRequest
from hub.router.router import REQUEST_KEYS

JSON = dict[str, Any]
SAMPLING = ("temperature", "top_p", "top_k", "thinking")
TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}
CUSTOM_TOOL_TYPES = frozenset({None, "custom"})
PART_FIELDS = {"text": ".text", "image": ".source", "document": ".source"}
"""Block type -> the field holding its data, which an error about the chat part's data names."""
NAMES = {"stop": "stop_sequences", "tool_choice.function": "tool_choice"}
"""A chat field -> the Messages field the translation made it of, where they differ."""


def locations() -> Locations:
    """Where a translated request's chat fields came from, in the Messages API's names and words."""
    return Locations(None, NAMES, {"parameters": "input_schema"})


def bad(message: str, param: str | None = None) -> BadRequest:
    return BadRequest(message, param=param, code="invalid_value")


def wrong(value: Any, where: str, expected: str) -> BadRequest:
    """Anthropic's words for a field that is not what it should be: missing, or of the wrong kind."""
    return bad(f"{where}: Field required" if value is None else f"{where}: Input should be {expected}", where)


def to_chat(body: Any, *, anthropic: bool = True, where: Locations | None = None) -> JSON:
    """The Chat Completions body for an Anthropic Messages `body`; `where` gets each chat message's origin.

    `anthropic`: every deployment of the alias is Anthropic's, so the client's thinking blocks (which the provider
    replays) and `cache_control` marks go on; other upstreams cannot use Anthropic signatures (Gemini's are restored
    by the provider from the tool-call ids) and may refuse fields they do not know on parts and tools.

    Raises:
        BadRequest: a field Anthropic itself would refuse, or one the gateway cannot map (server tools).
    """
    if not isinstance(body, dict):
        raise bad("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise wrong(model, "model", "a valid string" if model != "" else "at least 1 character long")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
        raise wrong(max_tokens, "max_tokens", "a valid integer")
    if max_tokens < 1:
        raise bad("max_tokens: Input should be greater than or equal to 1", "max_tokens")
    chat: JSON = {"model": model, "max_tokens": max_tokens, "messages": system(body.get("system"))}
    if where is not None and chat["messages"]:
        where.add(0, _origin({"content": body["system"]}, "system"))
    chat["messages"] += conversation(body.get("messages"), anthropic, where, len(chat["messages"]))
    if where is not None:
        where.made(chat["messages"])  # what comes after is the tool loop's
    _options(body, chat)  # pyright: ignore[reportUnknownArgumentType]
    if where is not None:  # the client's tools come first, one for one; `mcp_servers` entries after them
        where.tools = {i: f"tools[{i}]" for i, t in enumerate(chat.get("tools", ())) if t["type"] == "function"}
    if not anthropic:
        _drop_cache_control(chat)
    return chat


def _drop_cache_control(chat: JSON) -> None:
    for item in [*chat.get("tools", ()), *(p for m in chat["messages"] if isinstance(m["content"], list)
                                          for p in m["content"])]:  # fmt: skip
        item.pop("cache_control", None)


def _options(body: JSON, chat: JSON) -> None:
    for name in SAMPLING:
        if body.get(name) is not None:
            chat[name] = body[name]
    for name in sorted(REQUEST_KEYS.intersection(body)):  # the router checks them (and the key's models) as on chat
        chat[name] = body[name]
    if body.get("cache") is not None:  # the response cache's controls: run_chat takes them out and checks them
        chat["cache"] = body["cache"]
    if (stop := body.get("stop_sequences")) is not None:
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):  # pyright: ignore[reportUnknownVariableType]
            raise bad("stop_sequences: must be an array of strings", "stop_sequences")
        if stop:
            chat["stop"] = stop
    if isinstance(metadata := body.get("metadata"), dict) and isinstance(user := metadata.get("user_id"), str):
        chat["user"] = user
    if body.get("stream") is not None:
        if not isinstance(body["stream"], bool):
            raise bad("stream: must be a boolean", "stream")
        if body["stream"]:
            chat["stream"] = True
            chat["stream_options"] = {"include_usage": True}  # message_delta carries the usage
    if body.get("tools"):
        chat["tools"] = [tool(t, i) for i, t in enumerate(_array(body["tools"], "tools"))]
    if body.get("mcp_servers"):
        servers = _array(body["mcp_servers"], "mcp_servers")
        chat["tools"] = [*chat.get("tools", ()), *(mcp_server(s, i) for i, s in enumerate(servers))]
    if (choice := body.get("tool_choice")) is not None:
        _tool_choice(choice, chat)


def mcp_server(raw: Any, i: int) -> JSON:
    """Anthropic's MCP connector entry naming a hub server, as the tool loop's `mcp` tool (run by the gateway).

    The entry's `url` is not fetched: only this gateway's own servers can be named (by `name`).
    """
    if not isinstance(raw, dict):
        raise wrong(raw, f"mcp_servers.{i}", "an object")
    if not isinstance(name := raw.get("name"), str) or not name:  # pyright: ignore[reportUnknownMemberType]
        raise wrong(name, f"mcp_servers.{i}.name", "a non-empty string")
    entry: JSON = {"type": "mcp", "server_label": name, "require_approval": "never"}
    config = raw.get("tool_configuration")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    if isinstance(config, dict) and isinstance(allowed := config.get("allowed_tools"), list):  # pyright: ignore[reportUnknownMemberType]
        entry["allowed_tools"] = allowed
    return entry


def _array(value: Any, param: str) -> list[Any]:
    if not isinstance(value, list):
        raise bad(f"{param}: must be an array", param)
    return value  # pyright: ignore[reportUnknownVariableType]


def system(value: Any) -> list[JSON]:
    if value is None or value == "" or value == []:
        return []
    if isinstance(value, str):
        return [{"role": "system", "content": value}]
    return [
        {"role": "system", "content": [_text_part(b, f"system.{i}") for i, b in enumerate(_array(value, "system"))]}
    ]


def conversation(
    messages: Any, replay_thinking: bool = True, where: Locations | None = None, offset: int = 0
) -> list[JSON]:
    """The chat messages for the client's `messages`, which start at chat index `offset` (after the system's)."""
    if not isinstance(messages, list) or not messages:
        raise bad("messages: at least one message is required", "messages")
    out: list[JSON] = []
    last = len(messages) - 1  # pyright: ignore[reportUnknownArgumentType]
    for i, message in enumerate(messages):  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
        made = _turn(message, f"messages.{i}", i == last, replay_thinking)
        if where is not None:
            for n, origin in enumerate(_origins(message, f"messages.{i}", made)):  # pyright: ignore[reportUnknownArgumentType]
                where.add(offset + len(out) + n, origin)
        out += made
    if all(m["role"] == "system" for m in out):
        raise bad("messages: at least one user or assistant message is required", "messages")
    return out


def _origins(message: JSON, where: str, made: list[JSON]) -> list[Origin]:
    """Where each chat message `_turn` made of the client's `message` came from: a user turn's tool messages from its
    `tool_result` blocks (in order), its user message's parts from the other blocks; otherwise the message itself."""
    blocks: list[Any] = message["content"] if isinstance(message.get("content"), list) else []
    results = [k for k, b in enumerate(blocks) if b["type"] == "tool_result"] if message["role"] == "user" else []
    tools = [Origin(f"{where}.content.{k}", {"content": ".content", "tool_call_id": ".tool_use_id"}) for k in results]
    others = [k for k, b in enumerate(blocks) if b["type"] != "tool_result"]
    return tools + [_origin(message, where, others) for _ in made[len(tools) :]]


def _origin(message: JSON, where: str, blocks: list[int] | None = None) -> Origin:
    """A message's origin; `blocks`: the client's block index for each part of its chat content (None: all)."""
    content = message["content"]
    fields = {"role": ".role", "content": ".content"}
    if not isinstance(content, list):
        return Origin(where, fields)
    at = where if where == "system" else f"{where}.content"
    indexes = range(len(content)) if blocks is None else blocks  # pyright: ignore[reportUnknownArgumentType]
    return Origin(
        where, fields, {p: (f"{at}.{k}", PART_FIELDS.get(content[k]["type"], "")) for p, k in enumerate(indexes)}
    )


def _turn(message: Any, where: str, last: bool, replay_thinking: bool) -> list[JSON]:
    """One client message as chat messages. Only the final message, an assistant one (a prefill), may be empty:
    Anthropic's rule, and its words, whichever upstream serves the alias."""
    if not isinstance(message, dict):
        raise bad(f"{where}: must be an object", where)
    role, content = message.get("role"), message.get("content")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    if role == "system":  # mid-conversation system text, as Claude Code sends it
        return system(content)
    if role not in ("user", "assistant"):
        raise bad(f"{where}.role: Input should be 'user', 'assistant' or 'system'", f"{where}.role")
    if isinstance(content, str):
        content = [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise wrong(content, f"{where}.content", "a string or an array of content blocks")
    if not content and not (role == "assistant" and last):
        raise bad(f"{where}: all messages must have non-empty content except for the optional final assistant "
                  "message", f"{where}.content")  # fmt: skip
    return user_turn(content, where) if role == "user" else assistant_turn(content, where, replay_thinking)


def _block(block: Any, where: str) -> JSON:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise bad(f"{where}: a content block must be an object with a 'type'", where)
    return block  # pyright: ignore[reportUnknownVariableType]


def user_turn(content: list[Any], where: str) -> list[JSON]:
    """`role: tool` messages for the tool results, then one user message with the rest."""
    results: list[JSON] = []
    parts: list[JSON] = []
    for k, raw in enumerate(content):
        block, at = _block(raw, f"{where}.content.{k}"), f"{where}.content.{k}"
        if block["type"] == "tool_result":
            results.append(tool_result(block, at))
        else:
            parts.append(user_part(block, at))
    if len(parts) == 1 and parts[0].keys() == {"type", "text"}:
        return [*results, {"role": "user", "content": parts[0]["text"]}]  # the plain form every upstream takes
    return results + ([{"role": "user", "content": parts}] if parts else [])


def user_part(block: JSON, where: str) -> JSON:
    kind = block["type"]
    if kind == "text":
        return _nonempty(_text_part(block, where), where)
    if kind in ("image", "document"):
        return _media_part(block, where)
    raise bad(f"{where}: content block type {kind!r} is not supported in a user message", f"{where}.type")


def _nonempty(block: JSON, where: str) -> JSON:
    """A message's text block, which Anthropic refuses empty (so does the gateway, whichever upstream serves it)."""
    if not block.get("text"):
        raise bad(f"{where}: text content blocks must be non-empty", f"{where}.text")
    return block


def _text_part(block: Any, where: str) -> JSON:
    block = _block(block, where)
    if block["type"] != "text" or not isinstance(block.get("text"), str):
        raise bad(f"{where}: expected a text block with a 'text' string", where)
    part: JSON = {"type": "text", "text": block["text"]}
    if isinstance(block.get("cache_control"), dict):
        part["cache_control"] = block["cache_control"]
    return part


def _media_part(block: JSON, where: str) -> JSON:
    source = block.get("source")
    if not isinstance(source, dict):
        raise wrong(source, f"{where}.source", "an object (a base64, url or text source)")
    kind = source.get("type")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    if kind == "base64" and isinstance(data := source.get("data"), str):  # pyright: ignore[reportUnknownMemberType]
        url = f"data:{source.get('media_type') or 'application/octet-stream'};base64,{data}"  # pyright: ignore[reportUnknownMemberType]
    elif kind == "url" and isinstance(url := source.get("url"), str):  # pyright: ignore[reportUnknownMemberType]
        if not url.startswith(("http://", "https://")):
            raise bad(f"{where}.source.url: expected an http(s) URL", f"{where}.source.url")
    elif kind == "text" and block["type"] == "document" and isinstance(source.get("data"), str):  # pyright: ignore[reportUnknownMemberType]
        return {"type": "text", "text": source["data"]}
    else:
        raise bad(f"{where}.source: expected a base64 or url source", f"{where}.source")
    if block["type"] == "image":
        return {"type": "image_url", "image_url": {"url": url}}
    return {"type": "file", "file": {"file_data": url, "filename": str(block.get("title") or "document")}}


def tool_result(block: JSON, where: str) -> JSON:
    """A `tool_result` block as a `role: tool` message; an error result says so in its text."""
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str) or not call_id:
        raise wrong(call_id, f"{where}.tool_use_id", "a non-empty string")
    content = block.get("content")
    if content is None or isinstance(content, str):
        text = content or ""
    else:
        text = "".join(_result_text(b, f"{where}.content.{i}") for i, b in enumerate(_array(content, where)))
    if block.get("is_error"):
        text = f"Error: {text}"
    return {"role": "tool", "tool_call_id": call_id, "content": text}


def _result_text(raw: Any, where: str) -> str:
    block = _block(raw, where)
    if block["type"] == "text":
        return str(block.get("text") or "")
    return f"[{block['type']} omitted]"  # Chat Completions tool messages carry text only


def assistant_turn(content: list[Any], where: str, replay_thinking: bool = True) -> list[JSON]:
    """An assistant turn as chat messages. The MCP connector blocks a client sends back (the hub calls of the previous
    answer) split it: the text and calls before each `mcp_tool_result`, then that result as a `role: tool` message."""
    out: list[JSON] = []
    turn: _Turn = {"texts": [], "calls": [], "thinking": []}
    for k, raw in enumerate(content):
        block, at = _block(raw, f"{where}.content.{k}"), f"{where}.content.{k}"
        kind = block["type"]
        if kind == "text":
            turn["texts"].append(str(_nonempty(block, at)["text"]))
        elif kind in ("tool_use", "server_tool_use", "mcp_tool_use"):
            turn["calls"].append(_tool_call(block, at))
        elif kind in ("thinking", "redacted_thinking"):
            turn["thinking"].append(block)
        elif kind in ("mcp_tool_result", "web_search_tool_result"):
            out += _answered(turn, block, at, replay_thinking)
        else:
            raise bad(f"{at}: content block type {kind!r} is not supported in an assistant message", f"{at}.type")
    if turn["texts"] or turn["calls"] or turn["thinking"] or not out:
        out.append(_assistant(turn, replay_thinking))
    return out


class _Turn(TypedDict):
    texts: list[str]
    calls: list[JSON]
    thinking: list[JSON]


def _answered(turn: _Turn, block: JSON, where: str, replay_thinking: bool) -> list[JSON]:
    """The assistant message so far and the tool message answering one of its calls; a result whose call is not in
    this part of the turn is dropped, as the upstream would refuse a tool message it cannot pair."""
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str):
        raise wrong(call_id, f"{where}.tool_use_id", "a valid string")
    if call_id not in {call["id"] for call in turn["calls"]}:
        return []
    message = _assistant(turn, replay_thinking)
    turn["texts"], turn["calls"], turn["thinking"] = [], [], []
    return [message, tool_result(_text_content(block), where)]


def _text_content(block: JSON) -> JSON:
    """A connector or server tool result with only its text blocks (search results carry no text to replay)."""
    content = block.get("content")
    if isinstance(content, list):
        content = [b for b in content if isinstance(b, dict) and b.get("type") == "text"]  # pyright: ignore[reportUnknownVariableType, reportUnknownMemberType]
    elif not isinstance(content, str):
        content = None
    return {**block, "content": content}


def _assistant(turn: _Turn, replay_thinking: bool) -> JSON:
    message: JSON = {"role": "assistant", "content": "".join(turn["texts"]) or None}
    if turn["calls"]:
        message["tool_calls"] = turn["calls"]
    if turn["thinking"] and replay_thinking:
        message["thinking_blocks"] = turn["thinking"]
    return message


def _tool_call(block: JSON, where: str) -> JSON:
    if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
        raise bad(f"{where}: a tool_use block needs an 'id' and a 'name'", where)
    arguments = orjson.dumps(block.get("input") or {}).decode()
    return {"id": block["id"], "type": "function", "function": {"name": block["name"], "arguments": arguments}}


def tool(raw: Any, i: int) -> JSON:
    """A client tool as an OpenAI function tool; Anthropic's server tools cannot run here and are refused."""
    spec = raw
    if not isinstance(spec, dict):
        raise wrong(spec, f"tools.{i}", "an object")
    if not isinstance(name := spec.get("name"), str):  # pyright: ignore[reportUnknownMemberType]
        raise wrong(name, f"tools.{i}.name", "a valid string")
    kind = spec.get("type")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    if kind is not None and not isinstance(kind, str):
        raise wrong(kind, f"tools.{i}.type", "a valid string")
    if kind not in CUSTOM_TOOL_TYPES:
        raise bad(f"tools.{i}: Anthropic server tool {kind!r} is not available through this gateway; "
                  "declare it as a client tool with an input_schema", f"tools.{i}.type")  # fmt: skip
    schema = spec.get("input_schema")  # pyright: ignore[reportUnknownMemberType]
    function: JSON = {"name": name, "parameters": schema if isinstance(schema, dict) else {"type": "object"}}
    if isinstance(spec.get("description"), str):  # pyright: ignore[reportUnknownMemberType]
        function["description"] = spec["description"]
    out: JSON = {"type": "function", "function": function}
    if isinstance(spec.get("cache_control"), dict):  # pyright: ignore[reportUnknownMemberType]
        out["cache_control"] = spec["cache_control"]
    return out


def _tool_choice(choice: Any, chat: JSON) -> None:
    kind = choice.get("type") if isinstance(choice, dict) else None  # pyright: ignore[reportUnknownMemberType]
    if kind == "tool" and isinstance(name := choice.get("name"), str):  # pyright: ignore[reportUnknownMemberType]
        chat["tool_choice"] = {"type": "function", "function": {"name": name}}
    elif isinstance(kind, str) and kind in TOOL_CHOICES:
        chat["tool_choice"] = TOOL_CHOICES[kind]
    else:
        raise bad("tool_choice: expected {'type': 'auto' | 'any' | 'none' | 'tool', ...}", "tool_choice")
    if choice.get("disable_parallel_tool_use") and chat.get("tools"):  # pyright: ignore[reportUnknownMemberType]
        chat["parallel_tool_calls"] = False
