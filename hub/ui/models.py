"""Models: every alias this session may use, its deployments with the router's cooldown state, a button that sends a
test request to an alias through `/v1`, and one that checks every deployment through `GET /health`."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from hub.accounts.auth import Principal
from hub.config import ModelRoute
from hub.state import hub_state
from hub.ui.api import call_api
from hub.ui.session import Session
from hub.ui.web import fragment, page, read_form, render

PING = [{"role": "user", "content": "Reply with the single word OK."}]


@page
async def models_page(request: Request, session: Session) -> Response:
    return await _render(request, session)


async def _render(request: Request, session: Session, status: int = 200, **context: Any) -> Response:
    listing = await call_api(request, session, "GET", "/v1/models")
    aliases = [m["id"] for m in listing.body["data"]] if listing.ok else []
    context.setdefault("error", None if listing.ok else listing.error)
    models = deployments(request, aliases, session.principal)
    return render(request, "models.html", session, status, models=models, **context)


def deployments(request: Request, aliases: list[str], principal: Principal) -> dict[str, list[dict[str, Any]]]:
    """Each alias's deployments, with the router's view of them: cooling (seconds left) and recent failures. Of an
    alias's hub tool servers only those `principal` may use are named (its tool loop gets no others)."""
    router = hub_state(request).router
    cooldowns = router.cooldowns
    now = cooldowns.clock()
    models: dict[str, list[dict[str, Any]]] = {alias: [] for alias in aliases}
    for group, slot in router.slots():
        if group.alias in models:
            until = cooldowns.until.get(slot.id)
            models[group.alias].append({**_deployment(slot.route, slot.shown_base, principal), "id": slot.id,
                                        "unavailable": slot.unavailable,
                                        "cooling": round(until - now) if until and until > now else None,
                                        "failures": cooldowns.failures(slot.id)})  # fmt: skip
    return models


def _deployment(route: ModelRoute, api_base: str, principal: Principal) -> dict[str, Any]:
    servers = [name for name in route.mcp_servers if principal.may_use_server(name)]
    return {"provider": route.deployment.provider, "model": route.deployment.model, "api_base": api_base,
            "input": _per_million(route.input_cost_per_token), "output": _per_million(route.output_cost_per_token),
            "rpm": route.rpm, "tpm": route.tpm, "missing_env": route.missing_env, "mcp_servers": servers}  # fmt: skip


def _per_million(cost: float | None) -> float | None:
    return None if cost is None else cost * 1_000_000


@page
async def test_model(request: Request, session: Session) -> Response:
    """One small chat completion as this session's key; shows the answer or the API's error, and the latency."""
    alias = (await read_form(request)).get("model", "")
    started = time.perf_counter()
    result = await call_api(request, session, "POST", "/v1/chat/completions",
                            body={"model": alias, "messages": PING, "max_tokens": 16})  # fmt: skip
    tested = {"model": alias, "ok": result.ok, "status": result.status,
              "ms": round((time.perf_counter() - started) * 1000),
              "text": _answer(result.body) if result.ok else result.error}  # fmt: skip
    if fragment(request):
        return render(request, "_model_test.html", session, tested=tested)
    return await _render(request, session, tested=tested)


@page
async def check_all(request: Request, session: Session) -> Response:
    """`GET /health` (master key): every deployment gets a one-token request; the page shows each one's answer.
    A virtual key is refused with 403 before anything is sent, as the key actions refuse it."""
    if not session.principal.is_master:
        return await _render(request, session, 403, error="Only the master key may check every deployment.")
    result = await call_api(request, session, "GET", "/health")
    if not result.ok:
        return await _render(request, session, result.status, error=result.error)
    checked = {e["id"]: None for e in result.body["healthy_endpoints"]}
    checked |= {e["id"]: e.get("error") or "unhealthy" for e in result.body["unhealthy_endpoints"]}
    response = await _render(request, session, checked=checked)
    response.headers["hx-replace-url"] = "/ui/models"
    return response


def _answer(body: Any) -> str:
    try:
        return str(body["choices"][0]["message"]["content"] or "")
    except (KeyError, IndexError, TypeError):
        return str(body)
