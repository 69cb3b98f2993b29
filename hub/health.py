"""Health endpoints: liveness (the process answers) and readiness (what it depends on), with a strict mode.

Readiness statuses:
    healthy    every check passed and every MCP upstream is connected (or disabled by an unset variable)
    degraded   the checks passed, but an MCP upstream is down or reconnecting: listed under `degraded`, with its error
    unhealthy  a check failed (database unreachable, MCP upstreams not yet tried once): HTTP 503

A degraded hub still serves models and the other servers' tools, so it answers 200; `?strict=true` makes it 503 for
orchestrators that want a pod with a broken upstream out of rotation.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from hub import __version__
from hub.errors import BadRequest, json_response
from hub.state import HubState, hub_state

DEGRADED_STATES = frozenset({"down", "connecting"})
"""Upstream states that make the hub degraded once the first attempt is over ("connecting" then means reconnecting)."""
_FLAGS = {"true": True, "1": True, "false": False, "0": False}


async def liveliness(request: Request) -> Response:
    return json_response("I'm alive!")


async def readiness(request: Request) -> Response:
    """`GET /health/readiness[?strict=true]`: healthy/degraded 200 (degraded 503 when strict), unhealthy 503."""
    strict = strict_flag(request.query_params.get("strict"))
    state = hub_state(request)
    checks: dict[str, Any] = {"models": len(state.config.models)}
    ready = True
    for name, check in state.extras.get("readiness", {}).items():
        ok, detail = await check()
        checks[name] = detail
        ready = ready and ok
    problems = degraded(state) if ready else []
    status = "unhealthy" if not ready else "degraded" if problems else "healthy"
    body: dict[str, Any] = {"status": status, "version": __version__, **checks}
    if problems:
        body["degraded"] = problems
    failing = status == "unhealthy" or (strict and status == "degraded")
    return json_response(body, 503 if failing else 200)


def strict_flag(value: str | None) -> bool:
    """The `strict` query parameter: absent, true/1 or false/0.

    Raises:
        BadRequest: any other value.
    """
    if value is None:
        return False
    flag = _FLAGS.get(value.lower())
    if flag is None:
        raise BadRequest(f"strict must be true or false, got {value!r}.", param="strict")
    return flag


def degraded(state: HubState) -> list[dict[str, str]]:
    """One entry per MCP upstream that is down or reconnecting: which server, its state and its last error."""
    hub = state.extras.get("mcp")
    if hub is None:
        return []
    statuses: dict[str, dict[str, Any]] = hub.status()
    return [
        {"component": "mcp_server", "name": name, "state": status["state"], "error": status["detail"] or "reconnecting"}
        for name, status in statuses.items()
        if status["state"] in DEGRADED_STATES
    ]
