"""`POST /v1/messages/count_tokens`: exact for Anthropic deployments, an estimate for the others.

For an alias whose deployment (as the router picks it) is `anthropic/`, the request goes to that upstream's own
`/v1/messages/count_tokens` with the deployment's model and key, and its count comes back unchanged; the hub tools
the request would offer (`mcp_servers`, or the alias's defaults) are counted as the tools the model would see.
Other providers have no such endpoint: the count is an estimate, the translated conversation's JSON length over
`CHARS_PER_TOKEN` (the rule of thumb OpenAI and Anthropic document), at least 1. The `x-toolhub-token-count`
header says which (`exact` or `estimate`).
"""

from __future__ import annotations

import math
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from hub.accounts.auth import Principal
from hub.api.messages.request import locations, to_chat
from hub.cache.controls import parse_controls
from hub.errors import BadRequest, HubError, json_response
from hub.gateway.requests import check_chat_request, read_json_body
from hub.loop.plan import prepare_tool_loop
from hub.state import HubState, authenticate, hub_state
from providers import _http
from providers.anthropic import ANTHROPIC_VERSION, messages_url
from providers.anthropic.names import wire_name
from providers.anthropic.response import parse_error
from providers.base import JSON, Deployment, ProviderError

CHARS_PER_TOKEN = 4
COUNTED = ("messages", "system", "tools", "tool_choice", "thinking")
"""The request fields Anthropic's count_tokens takes (it refuses `max_tokens`, `stream` and sampling fields)."""


async def count_tokens(request: Request) -> Response:
    """The count for a Messages request.

    Raises:
        HubError: a bad request, key or model (the endpoint renders it in Anthropic's shape).
        ProviderError: the Anthropic upstream refused or failed.
    """
    principal = await authenticate(request)
    state = hub_state(request)
    raw = await read_json_body(request, state.config.max_request_bytes)
    if not isinstance(raw, dict):
        raise BadRequest("The request body must be a JSON object.", code="invalid_value")
    where = locations()  # errors about the chat body name the client's blocks (the system prompt shifts them)
    try:
        # the checks /v1/messages runs (a body it refuses is never counted); count_tokens takes no max_tokens
        chat = check_chat_request(to_chat({"max_tokens": 1, **raw}, where=where))
        if state.extras.get("cache") is not None:
            parse_controls(chat.get("cache"))  # /v1/messages refuses malformed ones (run_chat's cache): so does this
        return await _counted(state, principal, raw, chat)
    except (HubError, ProviderError) as exc:
        where.mapped(exc)  # in place, before the endpoint renders it
        raise


async def _counted(state: HubState, principal: Principal, raw: JSON, chat: JSON) -> Response:
    """The exact count from an Anthropic deployment, else the estimate, for the translated request `chat`."""
    target = state.router.resolve(chat["model"], principal, chat)
    plan = await prepare_tool_loop(chat, target.route.mcp_servers, state.extras, principal)
    hub_tools = [_anthropic_tool(t) for t in plan.hub_tools.values()] if plan is not None else []
    deployment = target.route.deployment
    if deployment.provider == "anthropic":
        counted = await _upstream_count(state.pool, deployment, raw, hub_tools)  # pyright: ignore[reportUnknownArgumentType]
        return json_response(counted, headers={"x-toolhub-token-count": "exact"})
    client_tools = [t for t in chat.get("tools") or () if t.get("type") != "mcp"]
    size = len(orjson.dumps([chat["messages"], client_tools, hub_tools]))
    estimate = {"input_tokens": max(1, math.ceil(size / CHARS_PER_TOKEN))}
    return json_response(estimate, headers={"x-toolhub-token-count": "estimate"})


def _anthropic_tool(tool: Any) -> JSON:
    """A hub tool as the Anthropic provider sends it on /v1/messages (a name Anthropic refuses is mapped)."""
    schema = dict(tool.input_schema) if tool.input_schema else {"type": "object", "properties": {}}
    return {"name": wire_name(tool.name), "description": tool.description or "", "input_schema": schema}


async def _upstream_count(pool: _http.HttpPool, deployment: Deployment, raw: JSON, hub_tools: list[JSON]) -> JSON:
    body = {k: raw[k] for k in COUNTED if raw.get(k) is not None}
    body["model"] = deployment.model
    if hub_tools:
        body["tools"] = [*(body.get("tools") or ()), *hub_tools]
    url = messages_url(deployment, "/messages/count_tokens")
    headers = {"content-type": "application/json", "anthropic-version": ANTHROPIC_VERSION, **deployment.headers}
    if deployment.api_key:
        headers["x-api-key"] = deployment.api_key
    payload = orjson.dumps(body)
    async with _http.post(pool, deployment, url, payload, headers, stream=False, parse_error=parse_error) as response:
        counted = await _http.read_json(deployment.provider, response, deployment.timeout)
    if not isinstance(counted, dict) or not isinstance(counted.get("input_tokens"), int):  # pyright: ignore[reportUnknownMemberType]
        raise ProviderError(f"anthropic sent an unexpected count_tokens body: {str(counted)[:200]}", status_code=502,
                            provider="anthropic", code="upstream_bad_response")  # fmt: skip
    return counted  # pyright: ignore[reportUnknownVariableType]
