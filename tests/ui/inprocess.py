"""The whole hub app in process for console tests without a browser: its lifespan running, a client on it, and
helpers to log in and make keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2

from hub.config import parse_config
from hub.server import build_app

MASTER_KEY = "sk-console-master"
ORIGIN = {"origin": "http://127.0.0.1"}
SERVERS = Path(__file__).parent / "servers"


def hub_config(tmp_path: Path, servers: dict[str, Any], **models: dict[str, Any]) -> dict[str, Any]:
    """Two aliases on an unreachable upstream (`chat` with every server in `servers`, `hidden-model`), a SQLite
    store, and `models`: more aliases, {alias: extra litellm_params}."""
    model = {"model": "openai/x", "api_key": "k", "api_base": "http://127.0.0.1:9/v1"}
    return {
        "model_list": [
            {"model_name": "chat", "litellm_params": model, "mcp_servers": list(servers)},
            {"model_name": "hidden-model", "litellm_params": model},
            *({"model_name": alias, "litellm_params": {**model, **extra}} for alias, extra in models.items()),
        ],
        "general_settings": {"master_key": MASTER_KEY, "database_url": f"sqlite:///{tmp_path / 'hub.db'}"},
        "mcp_servers": servers,
    }


class InProcessHub:
    """The app with its lifespan running, and a client of it; every MCP upstream made its first attempt."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.app = build_app(parse_config(config, {}))
        self.lifespan = self.app.router.lifespan_context(self.app)

    async def __aenter__(self) -> httpx2.AsyncClient:
        await self.lifespan.__aenter__()
        hub = self.app.state.hub.extras.get("mcp")
        if hub is not None:
            await hub.wait_started(list(hub.upstreams))
        transport = httpx2.ASGITransport(app=self.app, client=("10.0.0.7", 1234), raise_app_exceptions=False)
        self.client = httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1")
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()
        await self.lifespan.__aexit__(None, None, None)


async def console_login(client: httpx2.AsyncClient, key: str = MASTER_KEY) -> str:
    """Log in; the session's CSRF token."""
    response = await client.post("/ui/login", data={"key": key}, headers=ORIGIN)
    assert response.status_code == 303, response.text
    page = await client.get("/ui/playground")
    return page.text.split('data-csrf="')[1].split('"')[0]


async def make_key(client: httpx2.AsyncClient, **fields: Any) -> dict[str, Any]:
    """A new virtual key (the master key's `/key/generate` answer: `key` is the secret, `token` its hash)."""
    auth = {"authorization": f"Bearer {MASTER_KEY}"}
    created = await client.post("/key/generate", json=fields, headers=auth)
    assert created.status_code == 200, created.text
    return created.json()
