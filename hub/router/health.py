"""Deployment health: `GET /health` (LiteLLM's shape), background checks that feed cooldowns, router metrics.

A check sends each deployment a minimal request (one user word, one output token). `/health/readiness` stays
cheap and calls nobody; `/health` needs the master key because every call costs the operator a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import anyio
from prometheus_client.core import GaugeMetricFamily
from starlette.requests import Request
from starlette.responses import Response

from hub.errors import HubError, PermissionDenied, json_response
from hub.router.classify import classify
from hub.router.config import ErrorKind
from hub.router.groups import Group, Slot
from hub.state import authenticate, hub_state
from providers.base import ChatRequest, ProviderError

if TYPE_CHECKING:
    from hub.router.router import Router

logger = logging.getLogger("hub.router")
CHECK_TIMEOUT = 30.0
_PING = {"messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}


async def health_endpoint(request: Request) -> Response:
    """`GET /health`: call every deployment now; healthy and unhealthy endpoints with counts."""
    principal = await authenticate(request)
    if not principal.is_master:
        raise PermissionDenied("GET /health needs the master key.", code="master_key_required")
    return json_response(await check_all(hub_state(request).router))


async def check_all(router: Router) -> dict[str, Any]:
    """Check every usable deployment concurrently; record the results in the cooldowns."""
    slots = [(g, s) for g, s in router.slots()]
    results: list[str | None] = [None] * len(slots)

    async def one(i: int, group: Group, slot: Slot) -> None:
        results[i] = await check(router, group, slot)

    async with anyio.create_task_group() as tg:
        for i, (group, slot) in enumerate(slots):
            tg.start_soon(one, i, group, slot)
    healthy = [_entry(g, s) for (g, s), error in zip(slots, results, strict=True) if error is None]
    unhealthy = [{**_entry(g, s), "error": e} for (g, s), e in zip(slots, results, strict=True) if e is not None]
    return {"healthy_endpoints": healthy, "unhealthy_endpoints": unhealthy,
            "healthy_count": len(healthy), "unhealthy_count": len(unhealthy)}  # fmt: skip


async def check(router: Router, group: Group, slot: Slot) -> str | None:
    """None when the deployment answered a minimal request; else why not (and a failure is counted)."""
    if slot.provider is None or slot.route.missing_env:
        missing = ", ".join(slot.route.missing_env)
        return f"environment variable {missing} is not set" if missing else f"provider cannot load: {slot.unavailable}"
    deployment = slot.route.deployment
    request = ChatRequest(body={"model": group.alias, **_PING}, deployment=deployment, request_id="health-check")
    try:
        with anyio.fail_after(min(CHECK_TIMEOUT, deployment.timeout)):
            await slot.provider.complete(request)
    except TimeoutError:
        _cool(router, group, slot, "timeout")
        return f"no answer within {min(CHECK_TIMEOUT, deployment.timeout):g} s"
    except ProviderError as exc:
        if (kind := classify(exc)) in ("rate_limit", "timeout", "server"):
            _cool(router, group, slot, kind)
        return exc.message
    except HubError as exc:  # a request the provider refuses to translate: the deployment itself may be fine
        return exc.message
    router.cooldowns.until.pop(slot.id, None)  # answered: back in rotation at once
    return None


def _cool(router: Router, group: Group, slot: Slot, kind: ErrorKind) -> None:
    """A failed check cools the deployment when a request could go elsewhere (as a failed request would)."""
    if len(group.usable) > 1 or router.policy.chain(group.alias, kind):
        router.cooldowns.failed(slot.id, kind, immediate=True)


def _entry(group: Group, slot: Slot) -> dict[str, Any]:
    d = slot.route.deployment
    return {"model": f"{d.provider}/{d.model}", "model_name": group.alias, "api_base": slot.shown_base, "id": slot.id}


@contextlib.asynccontextmanager
async def health_loop(router: Router) -> AsyncIterator[None]:
    """`background_health_checks`: check every deployment each `health_check_interval` seconds."""
    task = asyncio.get_running_loop().create_task(_loop(router))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _loop(router: Router) -> None:
    while True:
        try:
            report = await check_all(router)
        except Exception:  # the top of a background task: log, and keep checking
            logger.exception("health check failed")
            report = {"unhealthy_count": 0, "unhealthy_endpoints": []}
        if report["unhealthy_count"]:
            names = ", ".join(f"{e['model_name']} ({e['api_base']})" for e in report["unhealthy_endpoints"])
            logger.warning("health check: %d unhealthy deployment(s): %s", report["unhealthy_count"], names)
        await anyio.sleep(router.policy.health_check_interval)


class RouterCollector:
    """Per-deployment series for `/metrics`: state (1 = cooling), failures, retries, fallbacks, successes."""

    def __init__(self, router: Router) -> None:
        self.router = router

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["model", "deployment", "api_base"]
        cooling = GaugeMetricFamily(
            "toolhub_deployment_cooling", "1 while the deployment is cooling down.", labels=labels
        )
        counters = {
            k: GaugeMetricFamily(f"toolhub_deployment_{k}", f"Attempts counted as {k} since start.", labels=labels)
            for k in ("successes", "failures", "retries", "fallbacks")
        }
        now = self.router.cooldowns.clock()
        for group, slot in self.router.slots():
            values = [group.alias, slot.id, slot.shown_base]
            cooling.add_metric(values, 1.0 if self.router.cooldowns.cooling(slot.id, now) else 0.0)
            for kind, family in counters.items():
                family.add_metric(values, float(getattr(slot, kind)))
        yield cooling
        yield from counters.values()
