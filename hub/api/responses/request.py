"""A Responses API request body as the Chat Completions body `run_chat` serves.

Input items become chat messages: message items (text, image and file parts), `function_call` items become an
assistant turn's `tool_calls`, `function_call_output` items become `tool` messages paired by `call_id`.
"""

from __future__ import annotations

from typing import Any

from hub.api.locations import Locations, Origin
from hub.api.responses import include
from hub.errors import BadRequest
from hub.router.router import REQUEST_KEYS

JSON = dict[str, Any]
PASSED = ("temperature", "top_p", "parallel_tool_calls", "user", "top_logprobs")
ROLES = {"user": "user", "system": "system", "developer": "system", "assistant": "assistant"}
UNSUPPORTED = ("background", "conversation", "prompt")
_THINKING = "_thinking"
_ITEM = "_item"
PART_FIELDS = {"input_text": ".text", "output_text": ".text", "text": ".text", "input_image": ".image_url",
               "input_file": ".file_data"}  # fmt: skip
"""Content part type -> the field holding its data, which an error about the chat part's data names."""
HOSTED = frozenset({"web_search", "web_search_preview", "web_search_preview_2025_03_11", "file_search",
                    "code_interpreter", "image_generation", "computer_use_preview", "local_shell",
                    "tool_search"})  # fmt: skip
"""OpenAI's hosted tools: only OpenAI runs them, so a translated request goes without them (clients such as Codex CLI
offer web_search by default) and the response says so in `x-toolhub-dropped-tools`."""
SKIPPED = ("item_reference", "mcp_list_tools", "mcp_call", "mcp_approval_request", "mcp_approval_response")
"""Input items with nothing to resend: references, and the hub's MCP items (approval responses are
answered by the endpoint before translation, hub/api/responses/approval.py)."""
NAMES = {"max_completion_tokens": "max_output_tokens", "max_tokens": "max_output_tokens", "tool_choice.function":
         "tool_choice", "reasoning_effort": "reasoning.effort", "response_format.json_schema": "text.format",
         "response_format": "text.format"}  # fmt: skip
"""A chat field -> the Responses field the translation made it of, where they differ."""


def locations() -> Locations:
    """Where a translated request's chat fields came from, in the Responses API's names."""
    return Locations(names=NAMES)


def check(body: Any) -> JSON:
    """`body` if it is an object naming a model.

    Raises:
        BadRequest: it is not.
    """
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.", code="invalid_request")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("You must provide a model parameter.", param="model", code="missing_required_parameter")
    for name in UNSUPPORTED:
        if body.get(name) is not None:
            raise BadRequest(f"'{name}' is not supported by this gateway.", param=name, code="unsupported_parameter")
    for name, kind, what in (("metadata", dict, "an object"), ("store", bool, "a boolean"),
                             ("previous_response_id", str, "a string"), ("instructions", str, "a string")):  # fmt: skip
        if body.get(name) is not None and not isinstance(body[name], kind):
            raise BadRequest(f"'{name}' must be {what}.", param=name, code="invalid_type")
    include.included(body)
    return body  # pyright: ignore[reportUnknownVariableType]


def to_chat(body: JSON, history: list[JSON] | None = None, where: Locations | None = None) -> JSON:
    """The Chat Completions body for a checked Responses `body` continuing the chat messages `history`; `where`
    gets the origin of each chat message made of the request.

    Raises:
        BadRequest: the body is not a usable Responses request; `param` names the field.
    """
    chat: JSON = {"model": body["model"], "messages": messages(body, history or [], where)}
    chat.update({name: body[name] for name in PASSED if body.get(name) is not None})
    chat.update({name: body[name] for name in REQUEST_KEYS.intersection(body)})  # the router's, checked as on chat
    if body.get("cache") is not None:  # the response cache's controls: run_chat takes them out and checks them
        chat["cache"] = body["cache"]
    if include.LOGPROBS in include.included(body):
        chat["logprobs"] = True
    _options(body, chat, where)
    return chat


def messages(body: JSON, history: list[JSON], where: Locations | None = None) -> list[JSON]:
    """The chat messages for `instructions`, the earlier conversation and `input`."""
    out: list[JSON] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise BadRequest("'instructions' must be a string.", param="instructions", code="invalid_type")
        out.append({"role": "system", "content": instructions})
        if where is not None:
            where.add(0, Origin("instructions"))
    out += history
    origins: list[Origin] = []
    start = len(out)
    out += input_messages(body.get("input"), origins)
    if where is not None:
        for n, origin in enumerate(origins):
            where.add(start + n, origin)
        where.made(out)
    if not any(m["role"] != "system" for m in out):
        raise BadRequest(_unanswerable(body.get("input")), param="input", code="invalid_value")
    return out


def _unanswerable(value: Any) -> str:
    """Why an `input` (with no earlier conversation) leaves the model nothing to answer."""
    if not isinstance(value, list) or not value:
        return "'input' must be a non-empty string or array."
    if all(isinstance(i, dict) and i.get("type", "message") == "message" for i in value):  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        return ("'input' holds only system or developer messages (instructions): add a user message for the model "
                "to answer.")  # fmt: skip
    return ("'input' holds nothing the model can answer (item references, MCP items and reasoning items are not turns "
            "of their own): add a user message.")  # fmt: skip


def input_messages(value: Any, origins: list[Origin] | None = None) -> list[JSON]:
    """Chat messages for an `input` string or list of items; `origins` gets the item each one came from."""
    if value is None:
        return []
    if isinstance(value, str):
        if value and origins is not None:
            origins.append(Origin("input"))
        return [{"role": "user", "content": value}] if value else []
    if not isinstance(value, list):
        raise BadRequest("'input' must be a string or an array.", param="input", code="invalid_type")
    out: list[JSON] = []
    for i, item in enumerate(value):  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
        if not isinstance(item, dict):
            raise BadRequest(f"input[{i}] must be an object.", param=f"input[{i}]", code="invalid_type")
        made = len(out)
        _add_item(out, item, i)  # pyright: ignore[reportUnknownArgumentType]
        for message in out[made:]:
            message[_ITEM] = i  # taken out below: which item made it, through the merging of _with_thinking
    merged = _with_thinking(out)
    for message in merged:
        i = message.pop(_ITEM, None)
        if origins is not None:
            origins.append(Origin("input") if i is None else _origin(value[i], i))  # pyright: ignore[reportUnknownArgumentType]
    return merged


def _origin(item: JSON, i: int) -> Origin:
    """Where a chat message made of `input[i]` came from: the item, with a user message's parts one to one."""
    if item.get("type", "message") == "function_call_output":
        return Origin(f"input[{i}]", {"content": ".output", "tool_call_id": ".call_id"})
    content = item.get("content")
    parts: dict[int, tuple[str, str]] = {}
    if item.get("role") == "user" and isinstance(content, list):
        parts = {j: (f"input[{i}].content[{j}]", _data_field(p)) for j, p in enumerate(content)}  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
    return Origin(f"input[{i}]", {"role": ".role", "content": ".content"}, parts)


def _data_field(part: Any) -> str:
    """The field holding a content part's data: a file given by URL has it in `file_url`."""
    kind = part.get("type") if isinstance(part, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    if kind == "input_file" and not part.get("file_data") and part.get("file_url"):  # pyright: ignore[reportOptionalMemberAccess, reportUnknownMemberType]
        return ".file_url"
    return PART_FIELDS.get(kind, "") if isinstance(kind, str) else ""


def _with_thinking(out: list[JSON]) -> list[JSON]:
    """Thinking restored from reasoning items (`_THINKING` entries) joined to the assistant turn that follows."""
    merged: list[JSON] = []
    for message in out:
        last = merged[-1] if merged else None
        if last is not None and last["role"] == _THINKING:
            merged.pop()
            if message["role"] == "assistant":
                message = {**message, "thinking_blocks": last["thinking_blocks"]}
        merged.append(message)
    return [m for m in merged if m["role"] != _THINKING]


def _add_item(out: list[JSON], item: JSON, i: int) -> None:
    kind = item.get("type", "message")
    if kind == "message":
        out.append(_message(item, i))
    elif kind == "function_call":
        _function_call(out, item, i)
    elif kind == "reasoning":
        if (blocks := include.decrypted(item.get("encrypted_content"))) is not None:
            out.append({"role": _THINKING, "thinking_blocks": blocks})  # joined to the next assistant turn
    elif kind == "function_call_output":
        out.append({"role": "tool", "tool_call_id": _text(item, "call_id", i), "content": _output(item, i)})
    elif kind not in SKIPPED:
        raise BadRequest(
            f"Unsupported input item type {kind!r} in input[{i}].", param=f"input[{i}].type", code="invalid_value"
        )


def _text(item: JSON, name: str, i: int) -> str:
    value = item.get(name)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"input[{i}].{name} must be a non-empty string.", param=f"input[{i}].{name}")
    return value


def _message(item: JSON, i: int) -> JSON:
    role = item.get("role")
    role = ROLES.get(role) if isinstance(role, str) else None
    if role is None:
        raise BadRequest(
            f"Invalid value for input[{i}].role: {item.get('role')!r}. Supported values are: "
            "'user', 'system', 'developer' and 'assistant'.",
            param=f"input[{i}].role",
            code="invalid_value",
        )
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise BadRequest(f"input[{i}].content must be a string or an array.", param=f"input[{i}].content")
    parts = [_part(part, i, j) for j, part in enumerate(content)]  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
    if role != "user":  # only user turns take images and files; the others are plain text
        return {"role": role, "content": "".join(p.get("text", "") for p in parts)}
    return {"role": role, "content": parts}


def _part(part: Any, i: int, j: int) -> JSON:
    where = f"input[{i}].content[{j}]"
    kind = part.get("type") if isinstance(part, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    if kind in ("input_text", "output_text", "text", "refusal"):
        text = part.get("text", part.get("refusal"))  # pyright: ignore[reportOptionalMemberAccess, reportUnknownMemberType, reportUnknownVariableType]
        if not isinstance(text, str):
            raise BadRequest(f"{where}.text must be a string.", param=f"{where}.text", code="invalid_type")
        return {"type": "text", "text": text}
    if kind == "input_image":
        return _image(part, where)  # pyright: ignore[reportArgumentType]
    if kind == "input_file":
        return _file(part, where)  # pyright: ignore[reportArgumentType]
    raise BadRequest(f"Unsupported content part type {kind!r} in {where}.", param=f"{where}.type", code="invalid_value")


def _image(part: JSON, where: str) -> JSON:
    url = part.get("image_url")
    if not isinstance(url, str) or not url:
        raise BadRequest(
            f"{where}: only images given by 'image_url' (a URL or data URL) are supported; file ids are not.",
            param=f"{where}.image_url",
            code="invalid_value",
        )
    return {"type": "image_url", "image_url": {"url": url, "detail": part.get("detail") or "auto"}}


def _file(part: JSON, where: str) -> JSON:
    """A file part: inline data, or an http(s) URL as the chat part's `file_data` (the providers fetch or refuse it)."""
    data, url = part.get("file_data"), part.get("file_url")
    if not (isinstance(data, str) and data) and isinstance(url, str) and url:
        if not url.startswith(("http://", "https://")):
            raise BadRequest(
                f"{where}.file_url: expected an http(s) URL.", param=f"{where}.file_url", code="invalid_value"
            )
        data = url
    if not isinstance(data, str) or not data:
        raise BadRequest(
            f"{where}: only files given inline by 'file_data' or by an http(s) 'file_url' are supported; file ids are "
            "not.",
            param=f"{where}.file_id" if part.get("file_id") is not None else f"{where}.file_data",
            code="invalid_value",
        )
    return {"type": "file", "file": {"file_data": data, "filename": part.get("filename") or "file"}}


def _function_call(out: list[JSON], item: JSON, i: int) -> None:
    arguments = item.get("arguments", "")
    if not isinstance(arguments, str):
        raise BadRequest(f"input[{i}].arguments must be a string.", param=f"input[{i}].arguments")
    call = {"id": _text(item, "call_id", i), "type": "function", "function": {"name": _text(item, "name", i)}}
    call["function"]["arguments"] = arguments or "{}"
    last = out[-1] if out else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)  # parallel calls: one assistant turn
        return
    out.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _output(item: JSON, i: int) -> str:
    output = item.get("output")
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return "".join(p.get("text", "") for p in output if isinstance(p, dict))  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType, reportUnknownArgumentType]
    raise BadRequest(f"input[{i}].output must be a string or an array.", param=f"input[{i}].output")


def _options(body: JSON, chat: JSON, where: Locations | None) -> None:
    if (limit := body.get("max_output_tokens")) is not None:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise BadRequest("'max_output_tokens' must be a positive integer.", param="max_output_tokens")
        chat["max_completion_tokens"] = limit
    if (tools := body.get("tools")) is not None:
        made = [(at, t) for i, tool in enumerate(_list(tools, "tools")) for at, t in _tools(tool, i)]
        if made:
            chat["tools"] = [t for _, t in made]
        if where is not None:  # hosted tools are left out, a namespace's functions come one by one, hub tools stay
            where.tools = {k: f"tools[{at}]" for k, (at, t) in enumerate(made) if t["type"] == "function"}
    if (choice := body.get("tool_choice")) is not None:
        chat["tool_choice"] = _tool_choice(choice)
    if (reasoning := body.get("reasoning")) is not None and isinstance(reasoning, dict):
        if (effort := reasoning.get("effort")) is not None:  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
            chat["reasoning_effort"] = effort
    if (text := body.get("text")) is not None:
        _text_format(text, chat)
    if body.get("stream") is not None:
        if not isinstance(body["stream"], bool):
            raise BadRequest("'stream' must be a boolean.", param="stream", code="invalid_type")
        if body["stream"]:
            chat["stream"] = True
            chat["stream_options"] = {"include_usage": True}


def _list(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise BadRequest(f"'{name}' must be an array.", param=name, code="invalid_type")
    return value  # pyright: ignore[reportUnknownVariableType]


def hosted_tools(body: JSON) -> list[str]:
    """The types of the request's OpenAI-hosted tools, which the translated path leaves out (`HOSTED`)."""
    tools = body.get("tools")
    kinds = [t.get("type") for t in tools if isinstance(t, dict)] if isinstance(tools, list) else []  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    return [k for k in kinds if isinstance(k, str) and k in HOSTED]  # pyright: ignore[reportUnknownVariableType]


def namespaces(body: JSON) -> dict[str, str]:
    """Function name -> the `namespace` tool offering it: the model's calls of it name the namespace, as OpenAI's do
    (Codex CLI finds its handler by both). Taken before the upstream call, from tools `to_chat` checked: whatever
    else the list holds is passed over, never a failure once the upstream answered (and was paid)."""
    tools = body.get("tools")
    out: dict[str, str] = {}
    for tool in tools if isinstance(tools, list) else ():  # pyright: ignore[reportUnknownVariableType]
        if not (isinstance(tool, dict) and tool.get("type") == "namespace" and isinstance(tool.get("name"), str)):  # pyright: ignore[reportUnknownMemberType]
            continue
        inner: Any = tool.get("tools")  # pyright: ignore[reportUnknownMemberType]
        names = [t.get("name") for t in inner if isinstance(t, dict)] if isinstance(inner, list) else []  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        out.update({name: tool["name"] for name in names if isinstance(name, str)})  # pyright: ignore[reportUnknownVariableType]
    return out


def _tools(tool: Any, i: int) -> list[tuple[str, JSON]]:
    """The chat tools for `tools[i]`, each with its client path inside `tools[...]`: itself, a namespace's
    functions, or none for a hosted tool."""
    if not isinstance(tool, dict):
        raise BadRequest(f"tools[{i}] must be an object.", param=f"tools[{i}]", code="invalid_type")
    kind = tool.get("type")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    if isinstance(kind, str) and kind in HOSTED:
        return []
    if kind == "namespace":
        if not isinstance(tool.get("name"), str) or not tool["name"]:  # pyright: ignore[reportUnknownMemberType]
            raise BadRequest(f"tools[{i}].name must be a string.", param=f"tools[{i}].name", code="invalid_type")
        inner = tool.get("tools")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if not isinstance(inner, list):
            raise BadRequest(f"tools[{i}].tools must be an array.", param=f"tools[{i}].tools", code="invalid_type")
        return [(f"{i}].tools[{j}", _tool(t, f"{i}].tools[{j}")) for j, t in enumerate(inner)]  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
    return [(str(i), _tool(tool, str(i)))]


def _tool(tool: Any, i: str) -> JSON:
    kind = tool.get("type") if isinstance(tool, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    if kind == "mcp":
        return tool  # pyright: ignore[reportReturnType]  # the hub's tools: the chat path's tool loop runs them
    if kind != "function":
        raise BadRequest(
            f"Unsupported tool type {kind!r} in tools[{i}]: this gateway takes 'function', 'namespace' and 'mcp' "
            f"tools (OpenAI's hosted tools, {', '.join(sorted(HOSTED))}, are left out).",
            param=f"tools[{i}].type",
            code="invalid_value",
        )
    function = {k: tool[k] for k in ("name", "description", "parameters", "strict") if tool.get(k) is not None}  # pyright: ignore[reportOptionalSubscript, reportUnknownVariableType, reportOptionalMemberAccess, reportUnknownMemberType]
    if not isinstance(function.get("name"), str):  # pyright: ignore[reportUnknownMemberType]
        raise BadRequest(f"tools[{i}].name must be a string.", param=f"tools[{i}].name", code="invalid_type")
    return {"type": "function", "function": function}


def _tool_choice(choice: Any) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str):  # pyright: ignore[reportUnknownMemberType]
        return {"type": "function", "function": {"name": choice["name"]}}
    raise BadRequest(
        "'tool_choice' must be 'auto', 'none', 'required' or {'type': 'function', 'name': ...}.",
        param="tool_choice",
        code="invalid_value",
    )


def _text_format(text: Any, chat: JSON) -> None:
    fmt = text.get("format") if isinstance(text, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    kind = fmt.get("type") if isinstance(fmt, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    if fmt is None or kind == "text":
        return
    if kind == "json_object":
        chat["response_format"] = {"type": "json_object"}
    elif kind == "json_schema" and isinstance(fmt.get("schema"), dict):  # pyright: ignore[reportOptionalMemberAccess, reportUnknownMemberType]
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if fmt.get(k) is not None}  # pyright: ignore[reportOptionalSubscript, reportUnknownVariableType, reportOptionalMemberAccess, reportUnknownMemberType]
        chat["response_format"] = {"type": "json_schema", "json_schema": {"name": "response", **schema}}
    else:
        raise BadRequest(
            "'text.format' must be {'type': 'text'}, {'type': 'json_object'} or "
            "{'type': 'json_schema', 'name': ..., 'schema': {...}}.",
            param="text.format",
            code="invalid_value",
        )
