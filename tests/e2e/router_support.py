"""Fixtures for the router e2e tests: fake upstreams of each provider behind fault injectors, on loopback."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest

from hub.accounts.usage import NullSink, UsageRecord
from hub.app import Extension, create_app
from hub.config import parse_config
from hub.mcp.http import mcp_extension, mcp_routes
from hub.state import HubState
from tests.e2e.conftest import MASTER_KEY
from tests.fakes import anthropic_upstream, gemini_upstream, openai_upstream
from tests.fakes.faults import Faults
from tests.support.hub import wait_for_tools
from tests.support.servers import ROOT, refusing_port, serve_app


@dataclass
class Upstream:
    faults: Faults
    url: str
    provider: str
    fake: Any
    """The fake server behind the faults (`requests` holds the bodies it answered)."""

    def deployment(self, name: str, model: str | None = None, **params: Any) -> dict[str, Any]:
        """A model_list entry for this upstream."""
        if self.provider == "openai":
            model, base, key = f"openai/{model or 'text'}", f"{self.url}/v1", openai_upstream.API_KEY
        elif self.provider == "anthropic":
            model, base, key = f"anthropic/{model or 'claude-sonnet-4-5'}", self.url, anthropic_upstream.API_KEY
        else:
            model, base, key = f"gemini/{model or 'gemini-3-text'}", self.url, gemini_upstream.API_KEY
        return {"model_name": name, "litellm_params": {"model": model, "api_base": base, "api_key": key, **params}}


@dataclass
class Upstreams:
    a: Upstream
    b: Upstream
    c: Upstream
    anthropic: Upstream
    gemini: Upstream

    def all(self) -> list[Upstream]:
        return [self.a, self.b, self.c, self.anthropic, self.gemini]


@pytest.fixture(scope="session")
def upstream_servers() -> Iterator[Upstreams]:
    fakes: list[tuple[Any, str]] = [(openai_upstream.FakeOpenAI(), "openai") for _ in range(3)]
    fakes += [(anthropic_upstream.FakeAnthropic(), "anthropic"), (gemini_upstream.FakeGemini(), "gemini")]
    with contextlib.ExitStack() as stack:
        ups: list[Upstream] = []
        for fake, provider in fakes:
            faults = Faults(fake.app)
            ups.append(Upstream(faults, stack.enter_context(serve_app(faults)), provider, fake))
        yield Upstreams(*ups)


@pytest.fixture
def up(upstream_servers: Upstreams) -> Upstreams:
    """The upstreams, with no faults and their call counts at zero."""
    for upstream in upstream_servers.all():
        upstream.faults.calls, upstream.faults.always, upstream.faults.queue = 0, None, []
        upstream.faults.arrivals = []
    return upstream_servers


def refused(name: str) -> dict[str, Any]:
    """A deployment whose port refuses connections."""
    base = f"http://127.0.0.1:{refusing_port()}/v1"
    return {"model_name": name, "litellm_params": {"model": "openai/text", "api_base": base, "api_key": "k"}}


class Records(NullSink):
    def __init__(self) -> None:
        self.records: list[UsageRecord] = []

    def record(self, record: UsageRecord) -> None:
        self.records.append(record)


@dataclass
class Gateway:
    url: str
    client: openai.OpenAI
    usage: Records
    app: Any

    def cooling(self, api_base: str) -> bool:
        """Whether this gateway now skips the deployment at `api_base` (read from the server thread's state)."""
        router = self.app.state.hub.router
        now = router.cooldowns.clock()
        return any(slot.route.deployment.api_base == api_base and router.cooldowns.cooling(slot.id, now)
                   for _, slot in router.slots())  # fmt: skip

    def wait_cooling(self, api_base: str, timeout: float = 30) -> None:
        """Wait (bounded) until this gateway skips the deployment at `api_base`: shared state arrives by polling."""
        deadline = time.monotonic() + timeout
        while not self.cooling(api_base):
            assert time.monotonic() < deadline, f"{self.url} never saw {api_base} cooling"
            time.sleep(0.02)

    def chat(self, model: str = "g", **extra: Any) -> Any:
        """A raw response (`.headers`, `.parse()`), with router options in `extra_body`."""
        return self.client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": "hello"}], extra_body=extra or None
        )


def _capture(usage: Records) -> Extension:
    @contextlib.asynccontextmanager
    async def extension(state: HubState) -> Any:
        state.usage = usage
        yield

    return extension


@contextlib.contextmanager
def gateway(models: list[dict[str, Any]], general: dict[str, Any] | None = None, **router: Any) -> Iterator[Gateway]:
    """The gateway app (no store) serving `models` with these router settings, and an SDK client for it."""
    raw = {"model_list": models, "router_settings": router,
           "general_settings": {"master_key": MASTER_KEY, **(general or {})}}  # fmt: skip
    usage = Records()
    app = create_app(parse_config(raw, {}), extensions=[_capture(usage)])
    with (
        serve_app(app) as url,
        openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=30) as client,
    ):
        yield Gateway(url, client, usage, app)


def answered_by(response: Any) -> tuple[str, str, str, str]:
    """(model group, api base, attempted retries, attempted fallbacks) from the x-litellm headers."""
    h = response.headers
    return (h["x-litellm-model-group"], h.get("x-litellm-model-api-base", ""), h["x-litellm-attempted-retries"],
            h["x-litellm-attempted-fallbacks"])  # fmt: skip


ASK = [{"role": "user", "content": "What is in the database?"}]
"""The question of the tool-loop tests (the fake agents answer it with hub tools)."""


@contextlib.contextmanager
def loop_gateway(db: Path, models: list[dict[str, Any]], **router: Any) -> Iterator[openai.OpenAI]:
    """The gateway with the MCP hub (postgres_db on the SQLite file `db`) serving `models`, and an SDK client."""
    config = {
        "model_list": models,
        "router_settings": router,
        "general_settings": {"master_key": MASTER_KEY, "max_tool_rounds": 3},
        "mcp_servers": {"postgres_db": {"transport": "stdio", "command": sys.executable, "cwd": str(ROOT),
                                        "args": ["-m", "tools.postgres_db", "--dsn", f"sqlite:///{db}"]}},
    }  # fmt: skip
    app = create_app(parse_config(config, {}), extensions=[mcp_extension()], routes=mcp_routes())
    with serve_app(app) as url:
        wait_for_tools(url, {"postgres_db"}, MASTER_KEY)
        with openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=30) as client:
            yield client
