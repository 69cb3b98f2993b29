"""Reading and checking an OpenAI chat-completions request body.

Only what the gateway must understand is checked (model, messages, stream, tools), plus what every provider would
otherwise get wrong its own way (a text part's `text` that is no string, an integer too large to read); unknown
top-level fields are accepted and left for the provider to forward or drop, as chat apps send many
(docs/internals.md).
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request

from hub.errors import BadRequest, PayloadTooLarge
from hub.limits import MAX_JSON_DEPTH, json_too_deep, too_deep_path

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
INTEGER_FIELDS = frozenset({"max_tokens", "max_completion_tokens", "n", "seed", "top_logprobs", "top_k"})
"""Top-level fields that take an integer; orjson reads an integer past 64 bits as a float (`_check_integer`)."""
INT_MIN, INT_MAX = -(2**63), 2**64 - 1
"""The integers orjson reads as integers; any integer outside arrives as a float."""
_JSON_TYPES = {bool: "a boolean", int: "an integer", float: "a decimal number", dict: "an object", list: "an array"}


async def read_json_body(request: Request, limit: int) -> Any:
    """The parsed body; raises PayloadTooLarge past `limit` bytes and BadRequest for invalid JSON."""
    raw = await read_body(request, limit)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            raise _too_deep(None) from exc
        raise BadRequest(f"The request body is not valid JSON: {exc}", code="invalid_json") from exc
    if json_too_deep(body, raw=raw):
        raise _too_deep(too_deep_path(body))
    return body


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused past `limit` bytes before any is read when Content-Length says so (`_read_body`).

    Raises:
        PayloadTooLarge: the body is over `limit` bytes.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    return await _read_body(request, limit)


async def _read_body(request: Request, limit: int) -> bytes:
    """The whole body, read off the ASGI channel and kept where Starlette keeps it (`request.body()` still answers).
    `request.stream()`, an async generator, cost more CPU than the rest of reading a small body (bench/cache.py)."""
    if hasattr(request, "_body"):
        return await request.body()
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk: bytes = message.get("body", b"")
        more = message.get("more_body", False)
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    raw = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    request._body = raw  # pyright: ignore[reportAttributeAccessIssue]
    return raw


def _too_deep(path: str | None) -> BadRequest:
    where = f" (at '{path}')" if path else ""
    return BadRequest(
        f"The request body nests objects and arrays more than {MAX_JSON_DEPTH} levels deep{where}.",
        param=path,
        code="json_too_deep",
    )


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The request body is larger than the gateway's limit of {limit} bytes.", code="request_too_large"
    )


def check_chat_request(body: Any) -> dict[str, Any]:
    """Raise BadRequest naming the offending `param` when the body is not a usable chat request."""
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.", code="invalid_request")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("You must provide a model parameter.", param="model", code="missing_required_parameter")
    _check_messages(body.get("messages"))
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise BadRequest("'stream' must be a boolean.", param="stream", code="invalid_type")
    if not stream:
        body.pop("stream_options", None)  # some clients always send it: accepted and ignored, as LiteLLM does
    elif (options := body.get("stream_options")) is not None and not isinstance(options, dict):
        raise BadRequest("'stream_options' must be an object.", param="stream_options", code="invalid_type")
    _check_tools(body.get("tools"))
    _check_tool_choice(body.get("tool_choice"))
    _check_stop(body.get("stop"))
    _check_unkeyed(body)
    _check_integers(body)
    return body  # pyright: ignore[reportUnknownVariableType]


def _check_unkeyed(body: dict[str, Any]) -> None:
    """`user` and `metadata` are left out of the cache key (hub/cache/keys.py), so the upstream never sees them on a
    hit: their types are checked here, or a body the upstream would refuse could be answered from the cache."""
    if (user := body.get("user")) is not None and not isinstance(user, str):
        raise BadRequest("'user' must be a string.", param="user", code="invalid_type")
    if (metadata := body.get("metadata")) is not None and not isinstance(metadata, dict):
        raise BadRequest("'metadata' must be an object.", param="metadata", code="invalid_type")


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty array.", param="messages", code="invalid_value")
    for i, message in enumerate(messages):  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
        if not isinstance(message, dict):
            raise BadRequest(f"messages[{i}] must be an object.", param=f"messages.[{i}]", code="invalid_type")
        role = message.get("role")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if not isinstance(role, str) or role not in ROLES:
            raise BadRequest(
                f"Invalid value for messages[{i}].role: {role!r}. Supported values are: "
                "'system', 'developer', 'user', 'assistant', 'tool' and 'function'.",
                param=f"messages.[{i}].role",
                code="invalid_value",
            )
        if role == "tool" and not isinstance(message.get("tool_call_id"), str):  # pyright: ignore[reportUnknownMemberType]
            raise BadRequest(
                f"messages[{i}] with role 'tool' needs a 'tool_call_id'.",
                param=f"messages.[{i}].tool_call_id",
                code="missing_required_parameter",
            )
        if type(content := message.get("content")) is list:  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
            # inline and without enumerate: a type test and one lookup a text part (~65 ns on the project's machine);
            # `index` finds the refused part itself, since an equal part before it would have been refused first
            for part in content:  # pyright: ignore[reportUnknownVariableType]
                if type(part) is dict and type(part.get("text")) is not str and part.get("type") == "text":  # pyright: ignore[reportUnknownMemberType]
                    raise _bad_text(part, i, content.index(part))  # pyright: ignore[reportUnknownArgumentType, reportUnknownMemberType]


def _bad_text(part: dict[str, Any], i: int, j: int) -> BadRequest:
    """A text part whose `text` is not a string, refused as OpenAI refuses it: checked here for every provider, where
    the Anthropic and Gemini translations dropped it as empty and then blamed the whole conversation."""
    where, param = f"messages[{i}].content[{j}].text", f"messages.[{i}].content.[{j}].text"
    if "text" not in part:
        return BadRequest(f"Missing required parameter: '{where}'.", param=param, code="missing_required_parameter")
    got = "null" if part["text"] is None else _JSON_TYPES.get(type(part["text"]), "a non-string")
    return BadRequest(f"Invalid type for '{where}': expected a string, but got {got} instead.", param=param,
                      code="invalid_type")  # fmt: skip


def _check_integers(body: dict[str, Any]) -> None:
    """An integer field holding a float out of the 64-bit range is an integer too large to read (orjson turns it
    into a float): refused as such rather than shown as `1e+20` next to "must be an integer" or forwarded as a float.
    Floats in range are left for the provider or upstream to judge, as before. One type test a top-level field."""
    for name, value in body.items():
        if type(value) is float and name in INTEGER_FIELDS:
            _check_integer(value, name)
    thinking = body.get("thinking")
    if type(thinking) is dict and type(thinking.get("budget_tokens")) is float:  # pyright: ignore[reportUnknownMemberType]
        _check_integer(thinking["budget_tokens"], "thinking.budget_tokens")


def _check_integer(value: float, name: str) -> None:
    if value > INT_MAX:
        raise BadRequest(f"Invalid '{name}': the integer is too large (the gateway reads integers up to {INT_MAX}).",
                         param=name, code="integer_above_max_value")  # fmt: skip
    if value <= INT_MIN:  # -2**63 - 1 and a few hundred below it read as float(-2**63), which equals INT_MIN
        raise BadRequest(f"Invalid '{name}': the integer is too small (the gateway reads integers down to {INT_MIN}).",
                         param=name, code="integer_below_min_value")  # fmt: skip


def _check_tools(tools: Any) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise BadRequest("'tools' must be an array.", param="tools", code="invalid_type")
    for i, tool in enumerate(tools):  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
        if not isinstance(tool, dict):
            raise BadRequest(f"tools[{i}] must be an object.", param=f"tools.[{i}]", code="invalid_type")
        kind = tool.get("type", "function")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if kind != "function":
            continue  # "mcp" entries are for the tool loop; others are for the upstream to judge
        function = tool.get("function")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        name = function.get("name") if isinstance(function, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if not isinstance(name, str) or not TOOL_NAME.match(name):
            raise BadRequest(
                f"Invalid 'tools[{i}].function.name': {name!r} must match ^[a-zA-Z0-9_-]{{1,64}}$.",
                param=f"tools[{i}].function.name",
                code="invalid_value",
            )


def _check_tool_choice(choice: Any) -> None:
    if choice is None or choice in ("none", "auto", "required"):
        return
    if isinstance(choice, dict):
        kind = choice.get("type")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        function = choice.get("function")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if kind == "function" and isinstance(function, dict) and isinstance(function.get("name"), str):  # pyright: ignore[reportUnknownMemberType]
            return
        if kind in ("allowed_tools", "custom"):
            return
    raise BadRequest(
        "Invalid 'tool_choice': use 'none', 'auto', 'required' or "
        '{"type": "function", "function": {"name": ...}}.',
        param="tool_choice",
        code="invalid_value",
    )


def _check_stop(stop: Any) -> None:
    if stop is None or isinstance(stop, str):
        return
    if isinstance(stop, list) and len(stop) <= 4 and all(isinstance(s, str) for s in stop):  # pyright: ignore[reportUnknownVariableType]
        return
    raise BadRequest("Invalid 'stop': a string or an array of at most 4 strings.", param="stop", code="invalid_value")
