"""Who is calling: bearer keys checked in constant time, behind a small seam for virtual keys.

`Authenticator.authenticate(token)` answers a `Principal` or raises. The master key is checked here; virtual keys
plug in as another `Authenticator` (see `hub.accounts.keys`) that the app tries after the master key.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from hub.errors import AuthenticationError


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller and what it may use; `None` for a limit means unlimited."""

    key_id: str | None
    """Hash id of a virtual key; None for the master key or an open gateway."""
    is_master: bool = False
    alias: str | None = None
    models: frozenset[str] | None = None
    mcp_servers: frozenset[str] | None = None
    mcp_tools: frozenset[str] | None = None
    """Tools this key may call, as "server/tool"; "server/*" allows a whole server. None: every tool of an allowed
    server."""
    metadata: Mapping[str, Any] = field(default_factory=dict[str, Any])

    @property
    def owner(self) -> str:
        """Whose state this is (cached tool results, kept hub rounds): the virtual key's id, else the alias
        ("master", "open")."""
        return self.key_id or self.alias or ""

    def may_use_model(self, alias: str) -> bool:
        return self.models is None or alias in self.models

    def may_use_server(self, server: str) -> bool:
        """Whether this caller may use the hub's MCP server `server` at all; `mcp_tools` also limits the servers."""
        if self.mcp_servers is not None and server not in self.mcp_servers:
            return False
        return self.mcp_tools is None or any(entry.partition("/")[0] == server for entry in self.mcp_tools)

    def may_use_tool(self, server: str, tool: str) -> bool:
        """Whether this caller may list and call `tool` of the hub's MCP server `server`."""
        if not self.may_use_server(server):
            return False
        tools = self.mcp_tools
        return tools is None or f"{server}/{tool}" in tools or f"{server}/*" in tools


MASTER = Principal(key_id=None, is_master=True, alias="master")
OPEN = Principal(key_id=None, is_master=True, alias="open")


class Authenticator(Protocol):
    async def authenticate(self, token: str | None) -> Principal:
        """Raises AuthenticationError (401), PermissionDenied (403) or RateLimited (429)."""
        ...


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The key from `Authorization: Bearer`, or from `x-api-key` / `api-key` as Anthropic and Azure clients send it."""
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return authorization.strip() or None
    return headers.get("x-api-key") or headers.get("api-key") or None


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class MasterKeyAuth:
    """The master key, then any further authenticators (virtual keys); no master key means an open gateway."""

    def __init__(self, master_key: str | None, *others: Authenticator) -> None:
        self._master_key = master_key
        self._others = others

    @property
    def open(self) -> bool:
        return self._master_key is None

    async def authenticate(self, token: str | None) -> Principal:
        if self._master_key is None:
            return OPEN
        if token is None:
            raise AuthenticationError(
                "Missing API key. Send it as 'Authorization: Bearer <key>'.", code="missing_api_key"
            )
        if constant_time_equal(token, self._master_key):
            return MASTER
        for other in self._others:
            return await other.authenticate(token)
        raise AuthenticationError("Invalid API key.", code="invalid_api_key")
