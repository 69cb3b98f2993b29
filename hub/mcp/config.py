"""The `mcp_servers` section of the config: one upstream MCP server per entry, in LiteLLM's shape plus our options.

`hub.config` reads the file and the environment and raises `ConfigError`; this module only describes and normalises an
entry. Stdio entries are made independent of where Toolhub was started from (`resolve_stdio`):

- `command: python` (or `python3`) runs the interpreter that runs Toolhub (`sys.executable`), so an upstream written in
  Python finds Toolhub's virtualenv and packages without the venv on `PATH`;
- a relative `cwd` is relative to the config file's folder; without `cwd` the server starts in Toolhub's working
  directory, as before (relative paths in `args` and `env` are left alone: they are read by the server, in its `cwd`).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024
"""Largest message read from an upstream (and largest tool arguments sent to it) unless `max_message_bytes` says."""
MAX_SESSIONS_BOUND = 1_000_000
"""The largest `max_sessions` / `max_sessions_per_key`: each session is an upstream connection (or process), so a
larger number is a mistake in the file, not a limit."""


def _whole_number(value: Any) -> Any:
    """YAML's `true` and `4.0` are not counts (pydantic would read them as 1 and 4); an `os.environ/NAME` string is
    left for pydantic to parse."""
    if isinstance(value, bool | float):
        raise PydanticCustomError("int_type", "Input should be an integer, not true/false or a decimal number")
    return value


SessionCount = Annotated[int, BeforeValidator(_whole_number), Field(ge=1, le=MAX_SESSIONS_BOUND)]
PER_CLIENT_KEYS = ("idle_timeout", "max_sessions", "max_sessions_per_key")
"""Keys that bound per-client upstream sessions (`hub.mcp.sessions`): no effect with `session: shared`."""
PYTHON_COMMANDS = frozenset({"python", "python3"})
_SERVER_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


class McpServerSpec(BaseModel):
    """One upstream MCP server (`mcp_servers.<name>`), in LiteLLM's shape plus Toolhub's options.

    `transport` is inferred when absent: `command` means stdio; a `url` ending in `/mcp` means streamable HTTP
    (`http`); any other `url` means `sse` (LiteLLM's default). `streamable_http` / `streamable-http` are read as `http`.
    Unknown keys are kept in `model_extra` and reported as ignored.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    transport: Literal["stdio", "sse", "http", "streamable_http", "streamable-http"] | None = None
    url: str | None = None
    command: str | None = None
    args: list[str] = Field(default_factory=list[str])
    env: dict[str, str] = Field(default_factory=dict[str, str])
    cwd: str | None = None
    headers: dict[str, str] = Field(default_factory=dict[str, str])
    extra_headers: dict[str, str] | None = None
    description: str | None = None
    alias: str | None = Field(default=None, pattern=r"^[a-zA-Z0-9_-]{1,32}$")
    """The prefix of this server's tools in the aggregated catalog (default: the server's name)."""
    connect_timeout: float = Field(default=15.0, gt=0)
    call_timeout: float = Field(default=60.0, gt=0)
    allowed_tools: list[str] | None = None
    disallowed_tools: list[str] | None = None
    max_message_bytes: int = Field(default=DEFAULT_MAX_MESSAGE_BYTES, ge=1024)
    """Toolhub: a longer message from the server is discarded (the request it answers fails with an error naming
    the limit); tool arguments longer than this are refused before they are sent."""
    cache_ttl: float | None = Field(default=None, gt=0)
    """Toolhub: keep results of this server's read-only tools this many seconds, per key (hub/cache/tools.py)."""
    session: Literal["shared", "per_client", "auto"] = "shared"
    """Toolhub: `shared`, one upstream session for every client (stateless servers); `per_client`, one upstream
    session (a process, for stdio) per downstream MCP session, opened on first use; `auto`, shared until the server
    sends a request to a client (sampling, elicitation, roots) or a client subscribes to a resource, then per client."""
    idle_timeout: float = Field(default=600.0, gt=0)
    """Toolhub: seconds a per-client upstream session may stay unused before it is closed."""
    max_sessions: SessionCount = 32
    """Toolhub: most per-client upstream sessions of this server at once; more clients get an error result."""
    max_sessions_per_key: SessionCount | None = None
    """Toolhub: most of this server's per-client upstream sessions one key holds at once (the master key, and an open
    gateway's callers, count as one key each); its next new one gets an error result naming this limit, while other
    keys still get theirs up to `max_sessions`. Default: no per-key limit (a deployment that puts all its users behind
    one key, such as Open WebUI, would be capped by any default). Set it below `max_sessions` when several keys share
    a per-client server, so that one key opening many MCP sessions cannot lock the others out until `idle_timeout`.
    With `session: shared` it has no effect (no per-client sessions) and is reported (`unused_session_keys`)."""

    @model_validator(mode="after")
    def _infer_transport(self) -> McpServerSpec:
        kind = self.transport
        if kind in ("streamable_http", "streamable-http"):
            kind = "http"
        if kind is None:
            if self.command:
                kind = "stdio"
            elif self.url:
                kind = "http" if self.url.rstrip("/").endswith("/mcp") else "sse"
        object.__setattr__(self, "transport", kind)  # frozen model: normalised once, here
        return self

    @field_validator("env", "headers", "extra_headers", mode="before")
    @classmethod
    def _drop_unset(cls, value: Any) -> Any:
        # An `os.environ/NAME` that is unset resolves to None; the server is then served as unavailable (missing_env).
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if v is not None}  # pyright: ignore[reportUnknownVariableType]
        return value

    def unused_session_keys(self) -> list[str]:
        """The `PER_CLIENT_KEYS` the file sets on a `shared` server, which opens no per-client sessions for them to
        bound: `hub.config` reports them at start and in check-config rather than let them silently do nothing."""
        if self.session != "shared":
            return []
        return [k for k in PER_CLIENT_KEYS if k in self.model_fields_set and getattr(self, k) is not None]

    def problem(self) -> str | None:
        """Why this entry cannot be served, when its settings are complete; None if it can."""
        if self.transport is None:
            return "needs either `command` (stdio) or `url` (sse / http)"
        if self.transport == "stdio" and not self.command:
            return "transport stdio needs `command`"
        if self.transport != "stdio" and not self.url:
            return f"transport {self.transport} needs `url`"
        return None

    @property
    def kind(self) -> Literal["stdio", "sse", "http"]:
        """The normalised transport."""
        return "stdio" if self.transport == "stdio" else "sse" if self.transport == "sse" else "http"

    @property
    def all_headers(self) -> dict[str, str]:
        """`headers` plus LiteLLM's `extra_headers`."""
        return {**self.headers, **(self.extra_headers or {})}

    def resolve_stdio(self, base_dir: Path | None) -> McpServerSpec:
        """This entry with `python` resolved to Toolhub's interpreter and a relative `cwd` made absolute."""
        if self.kind != "stdio":
            return self
        update: dict[str, Any] = {}
        if self.command in PYTHON_COMMANDS:
            update["command"] = sys.executable
        if self.cwd is not None and base_dir is not None and not Path(self.cwd).is_absolute():
            update["cwd"] = str((base_dir / self.cwd).resolve())
        return self.model_copy(update=update) if update else self


RESERVED_NAMES = frozenset({"tools", "results"})
"""`/mcp/tools` is the REST API's and `toolhub://results/` the result store's (`hub.catalog.results`)."""


@dataclass(frozen=True, slots=True)
class McpServerConfig:
    """An upstream MCP server with its secrets resolved."""

    name: str
    spec: McpServerSpec
    missing_env: tuple[str, ...] = ()


def server_problem(name: str, spec: McpServerSpec, missing_env: tuple[str, ...]) -> str | None:
    """Why `mcp_servers.<name>` cannot be served (a bad name or incomplete settings); None if it can."""
    if not _SERVER_NAME.match(name) or name in RESERVED_NAMES:
        return "server names are tool-name prefixes: use letters, digits, '_' or '-' (and not 'tools' or 'results')"
    if missing_env:  # with a missing variable, the server is just unavailable
        return None
    return spec.problem()
