"""An OpenAI chat-completions body -> an Anthropic Messages body (pure; see `build_request`).

Choices made where the two APIs differ (each is also a test):

* `max_tokens` is required by Anthropic: the client's `max_completion_tokens`/`max_tokens`, else the deployment's
  `max_tokens` param, else a per-model default (`default_max_tokens`).
* `reasoning_effort` -> `thinking: {type: enabled, budget_tokens}` (`THINKING_BUDGETS`); a native `thinking` object
  in the body or the config wins. The budget stays below `max_tokens`: it is cut to fit a client's explicit limit
  (OpenAI counts reasoning inside `max_completion_tokens`), or `max_tokens` is raised when it was only a default.
  With thinking on, Anthropic refuses forced tool use, `temperature` other than 1, `top_k` and `top_p` below 0.95:
  with `drop_params` (the default) those are downgraded (forced `tool_choice` -> auto) or dropped and reported like
  every dropped parameter (`providers.base.drop_param`); with `drop_params: false` the request is refused with a 400
  naming the parameter.
* Thinking blocks lost from an open tool cycle (the gateway restarted, the entry expired, another model answered):
  Anthropic refuses the turn, so thinking is disabled for that one request (its documented fallback) with a log line.
  Whenever thinking ends up off, replayed thinking blocks are left out of the history.
* `response_format: json_schema` -> Anthropic structured outputs (`output_config.format`), which constrains the
  answer to the schema and returns it as plain text, compatible with thinking and streaming (a forced tool, LiteLLM's
  way, is refused with thinking). `json_object` -> a system instruction; code fences are stripped from the answer.
* `temperature` is clamped to 0..1; `stop` -> `stop_sequences` without whitespace-only entries; `user` (or
  `safety_identifier`) -> `metadata.user_id` as a hash (Anthropic refuses e-mail addresses there); OpenAI-only fields
  (`n`, penalties, `seed`...) and fields foreign to OpenAI (`num_ctx`...) are dropped (`drop_param`).
* Claude Sonnet 4.5+, Opus 4.1+ and Haiku 4.5 refuse `temperature` and `top_p` together: `temperature` is kept and
  `top_p` dropped (or, with `drop_params: false`, refused).
* Tools without `"type": "object"` in their parameters get it; `allowed_tools` sends only the allowed tools.
* Client input of the wrong shape is a 400 naming the parameter; whatever slips past those checks and breaks the
  translation (TypeError, ValueError, ...) is still a 400, never a 500.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from providers.anthropic.cache_points import inject_cache_points
from providers.anthropic.messages import (
    THINKING_TYPES,
    Restore,
    bad_request,
    convert_messages,
    open_tool_turn_unsigned,
)
from providers.anthropic.names import ToolNames
from providers.base import JSON, Deployment, drop_param, drop_unknown_params, number_param

THINKING_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 2048, "high": 4096, "xhigh": 8192, "max": 16384}
MIN_THINKING_BUDGET = 1024
JSON_OBJECT_INSTRUCTION = (
    "Answer with one valid JSON object and nothing else: no explanation and no Markdown code fences."
)
_DEFAULT_MAX_TOKENS = ((re.compile(r"claude-3-[57]|claude-(opus|sonnet|haiku)-\d"), 8192),)
"""(model pattern, default max_tokens): Claude 3.5 and later; older or unknown models get the fallback."""
FALLBACK_MAX_TOKENS = 4096
_ONE_OF_TEMPERATURE_TOP_P = re.compile(
    r"claude-(sonnet-4[-.]([5-9]|\d\d)|opus-4[-.][1-9]\d?|haiku-4[-.]([5-9]|\d\d))(?!\d)"
)
"""Models that refuse `temperature` and `top_p` in one request (a date suffix like `-20250514` is not a version)."""
CACHE_POINTS = "cache_control_injection_points"
"""A deployment's `litellm_params.cache_control_injection_points` (`providers.anthropic.cache_points`)."""
_NATIVE = frozenset({"thinking", "top_k"})
"""Anthropic request fields a client may send beside the OpenAI ones."""
_NOT_ENCODED = frozenset({"n", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs",
                          "seed", "prediction", "audio", "web_search_options", "functions",
                          "function_call"})  # fmt: skip
"""OpenAI parameters that change the answer and have no Anthropic equivalent: dropped (named in
`x-toolhub-dropped-params`), or refused with drop_params off, as for Gemini."""


@dataclass(slots=True)
class Translated:
    """The Anthropic body and what the answer's translation needs."""

    body: JSON
    names: ToolNames
    json_object: bool = False
    """The client asked for `json_object`: strip code fences around the answer."""
    notes: list[str] = field(default_factory=list[str])
    """Why thinking was turned off, for the log."""
    dropped: list[str] = field(default_factory=list[str])
    """OpenAI parameters left out or downgraded (`drop_param`)."""


def default_max_tokens(model: str) -> int:
    """The output limit used when neither the client nor the config gives one."""
    for pattern, tokens in _DEFAULT_MAX_TOKENS:
        if pattern.search(model):
            return tokens
    return FALLBACK_MAX_TOKENS


def build_request(
    body: JSON, deployment: Deployment, restore: Restore, *, stream: bool = False, dropped: list[str] | None = None
) -> Translated:
    """Translate one request; `restore` gives back the thinking blocks kept for earlier tool-calling turns.

    `dropped` is where left-out parameters are noted (`drop_param`): the `ChatRequest`'s own list, so nothing has to
    be merged afterwards; a new list by default.

    Raises:
        ProviderError: a 400 for what Anthropic cannot express (or, with `drop_params: false`, refuses).
    """
    try:
        return _build(body, deployment, restore, stream, [] if dropped is None else dropped)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:  # client input of a shape nobody checked
        raise bad_request(f"The request could not be translated for Anthropic: {type(exc).__name__}: {exc}") from exc


def _build(body: JSON, deployment: Deployment, restore: Restore, stream: bool, dropped: list[str]) -> Translated:
    src: JSON = {**deployment.params, **body}
    names = ToolNames()
    tr = Translated({"model": deployment.model}, names, dropped=dropped)
    out = tr.body
    tools = _tools(src.get("tools"), names)
    messages = inject_cache_points(src.get("messages") or [], deployment.params.get(CACHE_POINTS))
    system, out["messages"] = convert_messages(messages, names, restore)
    max_tokens, explicit = _max_tokens(src, deployment)
    out["max_tokens"] = max_tokens
    if tools:
        choice = src.get("tool_choice")
        if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
            tools, choice = _allowed_tools(choice, tools, names)
        out["tools"] = tools
        if (choice := _tool_choice(choice, src.get("parallel_tool_calls"), names)) is not None:
            out["tool_choice"] = choice
    _sampling(src, out)
    _response_format(src.get("response_format"), out, system, tr)
    if system:
        out["system"] = system
    if (user := src.get("user") or src.get("safety_identifier")) and isinstance(user, str):
        out["metadata"] = {"user_id": hashlib.sha256(user.encode()).hexdigest()[:32]}
    if stream:
        out["stream"] = True
    _thinking(src, out, explicit, deployment, tr)
    if "temperature" in out and "top_p" in out and _ONE_OF_TEMPERATURE_TOP_P.search(deployment.model):
        _drop_or_refuse("top_p", "this model takes temperature or top_p, not both; temperature is kept", deployment, tr)
        del out["top_p"]
    for name in sorted(_NOT_ENCODED & src.keys()):
        if src[name] not in (None, False, 0) and not (name == "n" and src[name] == 1):
            _drop_or_refuse(name, "Anthropic has no equivalent", deployment, tr)
    if src.get("modalities") not in (None, ["text"]):  # an answer in audio: text is all Anthropic answers with
        _drop_or_refuse("modalities", "Anthropic answers in text only", deployment, tr)
    drop_unknown_params(body, _NATIVE, deployment, tr.dropped)
    return tr


def _tools(tools: Any, names: ToolNames) -> list[JSON]:
    if tools is not None and not isinstance(tools, list):
        raise bad_request("'tools' must be an array of tools.", "tools")
    out: list[JSON] = []
    for i, tool in enumerate(tools or ()):
        if not isinstance(tool, dict):
            raise bad_request(f"tools[{i}] must be an object.", f"tools[{i}]")
        kind = tool.get("type", "function")
        if kind == "mcp":
            continue  # the hub's tool-loop entries, not for the model
        if kind != "function":
            raise bad_request(f"tools[{i}] has type {kind!r}; Anthropic models take only function tools here.",
                              f"tools[{i}].type")  # fmt: skip
        function = tool.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise bad_request(f"tools[{i}].function.name is required.", f"tools[{i}].function.name")
        spec: JSON = {"name": names.add(function["name"]), "input_schema": _input_schema(function.get("parameters"), i)}
        if function.get("description"):
            spec["description"] = function["description"]
        if isinstance(cache := tool.get("cache_control") or function.get("cache_control"), dict):
            spec["cache_control"] = cache
        out.append(spec)
    return out


def _input_schema(parameters: Any, i: int) -> JSON:
    if parameters is None:
        return {"type": "object", "properties": {}}
    if not isinstance(parameters, dict):
        raise bad_request(
            f"tools[{i}].function.parameters must be a JSON Schema object.", f"tools[{i}].function.parameters"
        )
    return parameters if "type" in parameters else {"type": "object", **parameters}


def _allowed_tools(choice: JSON, tools: list[JSON], names: ToolNames) -> tuple[list[JSON], Any]:
    """The tools an `allowed_tools` choice lets the model see, and the plain OpenAI tool_choice that remains."""
    spec = choice.get("allowed_tools")
    if not isinstance(spec, dict):
        spec = {}
    listed = spec.get("tools")
    if not isinstance(listed, list) or spec.get("mode", "auto") not in ("auto", "required"):
        raise bad_request("tool_choice.allowed_tools needs a 'mode' of auto or required and a 'tools' array.",
                          "tool_choice.allowed_tools")  # fmt: skip
    allowed = {names.add(str(t["function"].get("name"))) for t in listed
               if isinstance(t, dict) and isinstance(t.get("function"), dict)}  # fmt: skip
    kept = [t for t in tools if t["name"] in allowed]
    if not kept:
        raise bad_request("tool_choice.allowed_tools names none of the functions in 'tools'.", "tool_choice")
    if spec.get("mode") != "required":
        return kept, "auto"
    if len(kept) > 1:
        return kept, "required"
    return kept, {"type": "function", "function": {"name": names.original(kept[0]["name"])}}


def _tool_choice(choice: Any, parallel: Any, names: ToolNames) -> JSON | None:
    if choice in (None, "auto"):
        out: JSON = {"type": "auto"}
    elif choice == "none":
        return {"type": "none"}
    elif choice == "required":
        out = {"type": "any"}
    elif isinstance(choice, dict) and choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str):
            raise bad_request("tool_choice.function.name is required.", "tool_choice.function.name")
        out = {"type": "tool", "name": names.add(name)}
    else:
        raise bad_request(f"Invalid value for tool_choice: {choice!r}.", "tool_choice")
    if parallel is False:
        out["disable_parallel_tool_use"] = True
    elif out == {"type": "auto"}:
        return None  # Anthropic's default
    return out


def _max_tokens(src: JSON, deployment: Deployment) -> tuple[int, bool]:
    for name in ("max_completion_tokens", "max_tokens"):
        value = src.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise bad_request(f"'{name}' must be a positive integer, got {value!r}.", name)
        return value, True
    return default_max_tokens(deployment.model), False


def _sampling(src: JSON, out: JSON) -> None:
    temperature = number_param("anthropic", src, "temperature")
    if temperature is not None:
        out["temperature"] = min(max(float(temperature), 0.0), 1.0)
    for name, kind in (("top_p", (int, float)), ("top_k", int)):
        if (value := number_param("anthropic", src, name, kind)) is not None:
            out[name] = value
    stop = src.get("stop")
    stops = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    if sequences := [s for s in stops if isinstance(s, str) and s.strip()]:
        out["stop_sequences"] = sequences


def _response_format(fmt: Any, out: JSON, system: list[JSON], tr: Translated) -> None:
    if fmt is None:
        return
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return
    if kind == "json_object":
        system.append({"type": "text", "text": JSON_OBJECT_INSTRUCTION})
        tr.json_object = True
        return
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise bad_request("response_format.json_schema.schema must be a JSON Schema object.",
                              "response_format.json_schema.schema")  # fmt: skip
        out["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
        return
    raise bad_request(f"Invalid value for response_format.type: {kind!r}.", "response_format.type")


def _thinking(src: JSON, out: JSON, explicit_max: bool, deployment: Deployment, tr: Translated) -> None:
    if not _enable_thinking(src, out, explicit_max, deployment, tr):
        for message in out["messages"]:  # replayed thinking is only wanted, and only safe, with thinking on
            if message["role"] == "assistant":
                message["content"] = [b for b in message["content"] if b["type"] not in THINKING_TYPES]


def _enable_thinking(src: JSON, out: JSON, explicit_max: bool, deployment: Deployment, tr: Translated) -> bool:
    thinking = _thinking_config(src)
    if thinking is None or thinking.get("type") == "disabled":
        if thinking is not None:
            out["thinking"] = thinking
        return False
    if open_tool_turn_unsigned(out["messages"]):
        tr.notes.append("thinking disabled for this request: the thinking blocks of the open tool-calling turn are "
                        "no longer known to the gateway (expired, restarted, or made by another model)")  # fmt: skip
        return False
    if thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens") or MIN_THINKING_BUDGET
        if isinstance(budget, bool) or not isinstance(budget, int):
            raise bad_request(f"thinking.budget_tokens must be an integer, got {budget!r}.",
                              "thinking.budget_tokens", "invalid_type")  # fmt: skip
        if budget >= out["max_tokens"]:
            if not explicit_max:
                out["max_tokens"] = budget + default_max_tokens(deployment.model)
            elif out["max_tokens"] - 1 >= MIN_THINKING_BUDGET:
                budget = out["max_tokens"] - 1
            else:
                tr.notes.append(f"thinking disabled for this request: max_tokens {out['max_tokens']} leaves no room "
                                f"for the minimum thinking budget of {MIN_THINKING_BUDGET}")  # fmt: skip
                return False
        thinking = {**thinking, "budget_tokens": budget}
    out["thinking"] = thinking
    _thinking_constraints(out, deployment, tr)
    return True


def _thinking_config(src: JSON) -> JSON | None:
    native = src.get("thinking")
    effort = src.get("reasoning_effort")
    if native is not None and not isinstance(native, dict):
        raise bad_request("'thinking' must be an object like {\"type\": \"enabled\", \"budget_tokens\": 2048}.",
                          "thinking")  # fmt: skip
    if effort == "none":
        return None
    if isinstance(native, dict):
        return dict(native)  # pyright: ignore[reportUnknownArgumentType]
    if effort is None:
        return None
    if not isinstance(effort, str) or effort not in THINKING_BUDGETS:
        raise bad_request(f"Invalid value for reasoning_effort: {effort!r}. Supported values are: 'none', "
                          f"{', '.join(repr(k) for k in THINKING_BUDGETS)}.", "reasoning_effort")  # fmt: skip
    return {"type": "enabled", "budget_tokens": THINKING_BUDGETS[effort]}


def _thinking_constraints(out: JSON, deployment: Deployment, tr: Translated) -> None:
    choice = out.get("tool_choice")
    if choice and choice.get("type") in ("any", "tool"):
        _drop_or_refuse("tool_choice", "Anthropic does not allow forced tool use with thinking; auto is used",
                        deployment, tr)  # fmt: skip
        out["tool_choice"] = {**choice, "type": "auto"}
        out["tool_choice"].pop("name", None)
    if out.get("temperature") not in (None, 1.0):
        _drop_or_refuse("temperature", "Anthropic allows only temperature 1 with thinking", deployment, tr)
        del out["temperature"]
    if "top_k" in out:
        _drop_or_refuse("top_k", "Anthropic does not allow top_k with thinking", deployment, tr)
        del out["top_k"]
    if "top_p" in out and not 0.95 <= out["top_p"] <= 1:
        _drop_or_refuse("top_p", "Anthropic allows top_p only between 0.95 and 1 with thinking", deployment, tr)
        del out["top_p"]


def _drop_or_refuse(name: str, reason: str, deployment: Deployment, tr: Translated) -> None:
    drop_param(deployment, name, reason, tr.dropped)
