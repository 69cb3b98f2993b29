"""What the running app holds, opened and closed by its lifespan."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import HTTPConnection

from hub.accounts.auth import MasterKeyAuth, Principal, bearer_token
from hub.accounts.usage import Guard, NullSink, UsageSink
from hub.config import Config
from hub.gateway.routing import ModelRouter
from providers._http import HttpPool


@dataclass
class HubState:
    config: Config
    pool: HttpPool
    router: ModelRouter
    auth: MasterKeyAuth
    usage: UsageSink = field(default_factory=NullSink)
    guard: Guard | None = None
    """Budgets and rate limits (`hub.accounts.accounting`); None when no store is configured."""
    extras: dict[str, Any] = field(default_factory=dict[str, Any])
    """Services added by later layers (MCP hub, store), by name."""


def hub_state(conn: HTTPConnection) -> HubState:
    return conn.app.state.hub


async def authenticate(conn: HTTPConnection) -> Principal:
    """The caller of an HTTP request; raises AuthenticationError and friends."""
    return await hub_state(conn).auth.authenticate(bearer_token(conn.headers))


def request_id(conn: HTTPConnection) -> str:
    return conn.scope.get("state", {}).get("request_id", "")
