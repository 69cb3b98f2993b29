"""OpenAI chat request -> Gemini `GenerateContentRequest` (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from providers import base
from providers.base import Deployment, ProviderError, drop_param, drop_unknown_params, number_param
from providers.gemini.contents import InlineData, MessageError, StepLookup, build_contents
from providers.gemini.schema import SchemaError, ToolNames, sanitize_schema
from providers.gemini.signatures import needs_signatures

JSON = dict[str, Any]

UNSUPPORTED = ("presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "prediction",
               "audio", "web_search_options", "functions", "function_call")  # fmt: skip
"""OpenAI parameters that change the answer and have no Gemini equivalent: dropped, or refused with drop_params off."""

NATIVE = frozenset({"thinking", "top_k"})
"""Gemini-minded fields a client may send beside the OpenAI ones."""

_LEVELS_FLASH = {"none": "minimal", "minimal": "minimal", "low": "low", "medium": "medium", "high": "high",
                 "xhigh": "high", "max": "high"}  # fmt: skip
_LEVELS_PRO = {"none": "low", "minimal": "low", "low": "low", "medium": "high", "high": "high", "xhigh": "high",
               "max": "high"}  # fmt: skip
_BUDGETS = {"none": 0, "minimal": 128, "low": 1024, "medium": 2048, "high": 4096, "xhigh": 8192, "max": 24576}
_VERSION = re.compile(r"gemini-(\d+)")


@dataclass(frozen=True, slots=True)
class Prepared:
    """A Gemini request body and the tool-name mapping needed to read its answer."""

    body: JSON
    names: ToolNames
    dropped: list[str] = field(default_factory=list[str])
    """OpenAI parameters left out (`drop_param`)."""


def bad_request(message: str, param: str | None, code: str = "invalid_value") -> ProviderError:
    return base.bad_request("gemini", message, param, code)


def build_request(
    body: JSON,
    deployment: Deployment,
    *,
    lookup: StepLookup,
    images: Mapping[str, InlineData],
    dropped: list[str] | None = None,
) -> Prepared:
    """The Gemini request for an OpenAI body (config defaults under the client's fields); left-out parameters are
    noted in `dropped` (the `ChatRequest`'s own list; a new one by default).

    Raises:
        ProviderError: 400 for input Gemini cannot take (naming the OpenAI `param`); input of a shape no check
        foresaw that breaks the translation is a 400 too, never a 500.
    """
    try:
        return _build(body, deployment, lookup, images, [] if dropped is None else dropped)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:  # MessageError and SchemaError are handled inside
        raise bad_request(f"The request could not be translated for Gemini: {type(exc).__name__}: {exc}", None) from exc


def _build(
    body: JSON, deployment: Deployment, lookup: StepLookup, images: Mapping[str, InlineData], dropped: list[str]
) -> Prepared:
    merged: JSON = {**deployment.params, **body}
    model = deployment.model
    names = ToolNames()
    try:
        declarations = _declarations(merged.get("tools"), names)
        system, contents = build_contents(
            merged.get("messages") or [], model=model, names=names, lookup=lookup, images=images,
            dummy_signatures=needs_signatures(model),
        )  # fmt: skip
    except MessageError as exc:
        raise bad_request(str(exc), exc.param, exc.code) from exc
    except ValueError as exc:
        raise bad_request(str(exc), "tools") from exc
    if not contents:
        raise bad_request("Gemini needs at least one message with content; every message was empty.", "messages")
    out: JSON = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": [{"text": text} for text in system]}
    _drop_unsupported(merged, deployment, dropped)
    drop_unknown_params(body, NATIVE, deployment, dropped)
    if declarations:
        declarations = _apply_tool_choice(merged.get("tool_choice"), declarations, names, out)
        out["tools"] = [{"functionDeclarations": declarations}]
    config = generation_config(merged, model)
    if config:
        out["generationConfig"] = config
    return Prepared(out, names, dropped)


def _declarations(tools: Any, names: ToolNames) -> list[JSON]:
    declarations: list[JSON] = []
    for i, tool in enumerate(tools or ()):  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
        kind = tool.get("type", "function")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if kind == "mcp":  # hub tool-loop entries, not for the model
            continue
        if kind != "function":
            raise MessageError(f"tools[{i}] has type {kind!r}; Gemini models take only function tools.",
                               f"tools[{i}].type")  # fmt: skip
        function = tool.get("function") or {}  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        declaration: JSON = {"name": names.add(str(function.get("name")))}  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
        if function.get("description"):  # pyright: ignore[reportUnknownMemberType]
            declaration["description"] = function["description"]
        try:
            parameters = sanitize_schema(function.get("parameters"))  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
        except SchemaError as exc:
            raise MessageError(f"tools[{i}].function.parameters: {exc}", f"tools[{i}].function.parameters") from exc
        if parameters.get("properties"):  # Gemini refuses an OBJECT with no properties: a no-argument tool sends none
            declaration["parameters"] = parameters
        declarations.append(declaration)
    return declarations


def _apply_tool_choice(choice: Any, declarations: list[JSON], names: ToolNames, out: JSON) -> list[JSON]:
    mode, allowed = "AUTO", None
    if choice == "none":
        mode = "NONE"
    elif choice == "required":
        mode = "ANY"
    elif isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        mode, allowed = "ANY", [names.to_gemini.get(str(name), str(name))]  # pyright: ignore[reportUnknownArgumentType]
    elif isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        spec = choice.get("allowed_tools")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if not isinstance(spec, dict) or not isinstance(spec.get("tools"), list):  # pyright: ignore[reportUnknownMemberType]
            raise bad_request("tool_choice.allowed_tools needs a 'mode' and a 'tools' array.",
                              "tool_choice.allowed_tools")  # fmt: skip
        keep = {names.to_gemini.get(str(t["function"].get("name")), "") for t in spec["tools"]  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType, reportUnknownArgumentType]
                if isinstance(t, dict) and isinstance(t.get("function"), dict)}  # pyright: ignore[reportUnknownMemberType]  # fmt: skip
        declarations = [d for d in declarations if d["name"] in keep]  # the model sees only the allowed tools
        mode = "ANY" if spec.get("mode") == "required" else "AUTO"  # pyright: ignore[reportUnknownMemberType]
    elif choice not in (None, "auto"):
        raise bad_request(f"Invalid value for 'tool_choice': {choice!r}.", "tool_choice")
    if allowed and allowed[0] not in {d["name"] for d in declarations}:
        raise bad_request(f"tool_choice names the function {allowed[0]!r}, which is not in 'tools'.",
                          "tool_choice")  # fmt: skip
    if mode != "AUTO" or allowed:
        config: JSON = {"mode": mode}
        if allowed:
            config["allowedFunctionNames"] = allowed
        out["toolConfig"] = {"functionCallingConfig": config}
    return declarations


def _drop_unsupported(body: JSON, deployment: Deployment, dropped: list[str]) -> None:
    rejected = [name for name in UNSUPPORTED if body.get(name) not in (None, False)]
    if (body.get("n") or 1) != 1:
        rejected.append("n")
    if body.get("parallel_tool_calls") is False:
        rejected.append("parallel_tool_calls")
    for name in rejected:
        drop_param(deployment, name, "Gemini has no equivalent", dropped)


def generation_config(body: JSON, model: str) -> JSON:
    """`generationConfig` from the OpenAI sampling, length, format and reasoning fields."""
    config: JSON = {}
    for name in ("max_completion_tokens", "max_tokens"):
        if (value := number_param("gemini", body, name, int)) is not None:
            if value < 1:
                raise bad_request(f"'{name}' must be a positive integer, got {value!r}.", name)
            config["maxOutputTokens"] = value
            break
    for source, target, kind in (("temperature", "temperature", (int, float)), ("top_p", "topP", (int, float)),
                                 ("top_k", "topK", int), ("seed", "seed", int)):  # fmt: skip
        if (value := number_param("gemini", body, source, kind)) is not None:
            config[target] = value
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)  # pyright: ignore[reportUnknownArgumentType]
    config.update(_response_format(body.get("response_format")))
    thinking = thinking_config(body, model)
    if thinking:
        config["thinkingConfig"] = thinking
    return config


def _response_format(fmt: Any) -> JSON:
    if fmt is None:
        return {}
    if not isinstance(fmt, dict):
        raise bad_request('\'response_format\' must be an object like {"type": "json_object"}.', "response_format")
    if fmt.get("type") in (None, "text"):
        return {}
    if fmt.get("type") == "json_object":
        return {"responseMimeType": "application/json"}
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if not isinstance(spec, dict):
            raise bad_request("response_format.json_schema must be an object with a 'schema'.",
                              "response_format.json_schema")  # fmt: skip
        try:
            schema = sanitize_schema(spec.get("schema"), ordering=True)  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
        except SchemaError as exc:
            raise bad_request(f"response_format.json_schema.schema: {exc}", "response_format") from exc
        out: JSON = {"responseMimeType": "application/json"}
        if schema:
            out["responseSchema"] = schema
        return out
    raise bad_request(f"Invalid value for 'response_format.type': {fmt.get('type')!r}.", "response_format")


def thinking_config(body: JSON, model: str) -> JSON | None:
    """`thinkingConfig` for `reasoning_effort` (or an Anthropic-style `thinking` default): levels on Gemini 3,
    token budgets on 2.x, never both (Gemini refuses that)."""
    effort = body.get("reasoning_effort")
    budget: int | None = None
    thinking = body.get("thinking")
    if effort is None and isinstance(thinking, dict):
        if thinking.get("type") == "disabled":  # pyright: ignore[reportUnknownMemberType]
            effort = "none"
        elif isinstance(thinking.get("budget_tokens"), int):  # pyright: ignore[reportUnknownMemberType]
            budget = int(thinking["budget_tokens"])  # pyright: ignore[reportUnknownArgumentType]
            effort = "low" if budget <= 1024 else "medium" if budget <= 4096 else "high"  # pyright: ignore[reportOperatorIssue]
    if effort is None:
        return None
    if not isinstance(effort, str) or effort not in _BUDGETS:
        raise bad_request(f"Invalid value for 'reasoning_effort': {effort!r}. Supported values are: "
                          + ", ".join(repr(k) for k in _BUDGETS) + ".", "reasoning_effort")  # fmt: skip
    version = _VERSION.search(model)
    if version is None or int(version.group(1)) >= 3:
        levels = _LEVELS_PRO if "-pro" in model else _LEVELS_FLASH
        return {"thinkingLevel": levels[effort], "includeThoughts": effort != "none"}
    budget = budget if budget is not None else _BUDGETS[effort]
    if budget == 0 and "-pro" in model:  # 2.5 Pro cannot turn thinking off
        budget = 128
    return {"thinkingBudget": budget, "includeThoughts": budget != 0}
