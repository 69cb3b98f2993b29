"""The config file's schema: LiteLLM's sections as pydantic models, read by `hub.config` into explicit objects.

Known keys are typed (a wrong type fails start with its path); unknown keys are kept in `model_extra` and reported
once as ignored by `hub.config`.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hub.mcp.config import McpServerSpec
from hub.ops.tracing.config import OtelSpec
from hub.router.config import RouterKeys
from providers.openai import KNOWN_PARAMS


class _Section(BaseModel):
    """Known keys are typed; unknown keys are kept in `model_extra` and reported as ignored. No number is infinite
    (`.inf`): sizes and durations are turned into integers and timers, where one fails or never ends."""

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)


REQUEST_DEFAULT_PARAMS = KNOWN_PARAMS - {"model", "messages", "stream", "stream_options", "tools", "functions"}
REQUEST_DEFAULT_PARAMS |= {"thinking", "top_k"}
NUMBER_TYPES = (int, float)
REQUEST_DEFAULT_TYPES: dict[str, tuple[type, ...]] = {
    **dict.fromkeys(("temperature", "top_p", "presence_penalty", "frequency_penalty"), NUMBER_TYPES),
    **dict.fromkeys(("max_tokens", "max_completion_tokens", "n", "seed", "top_k", "top_logprobs"), (int,)),
    **dict.fromkeys(("parallel_tool_calls", "logprobs", "store"), (bool,)),
    **dict.fromkeys(("user", "reasoning_effort", "verbosity", "service_tier", "safety_identifier"), (str,)),
    **dict.fromkeys(("response_format", "metadata", "logit_bias", "prediction"), (dict,)),
    "stop": (str, list),
}
"""Request defaults in `litellm_params` whose type is checked at load (a wrong one would fail every request)."""


class CachePoint(_Section):
    """One of LiteLLM's `cache_control_injection_points`: a message by role or by index (negative from the end)."""

    location: Literal["message"]
    role: Literal["system", "developer", "user", "assistant", "tool"] | None = None
    index: int | None = None
    control: dict[str, Any] | None = None


class LiteLLMParams(_Section):
    model: str
    api_key: str | None = None
    api_base: str | None = None
    base_url: str | None = None
    timeout: float | None = Field(default=None, gt=0)
    stream_timeout: float | None = Field(default=None, gt=0)
    max_retries: int | None = Field(default=None, ge=0, le=10)
    drop_params: bool | None = None
    extra_headers: dict[str, str] | None = None
    rpm: int | None = Field(default=None, ge=0)
    tpm: int | None = Field(default=None, ge=0)
    order: int | None = None
    weight: float | None = Field(default=None, ge=0)
    input_cost_per_token: float | None = Field(default=None, ge=0)
    output_cost_per_token: float | None = Field(default=None, ge=0)
    allow_private_image_urls: bool | None = None
    cache_read_input_token_cost: float | None = Field(default=None, ge=0)
    cache_control_injection_points: list[CachePoint] | None = None
    """Anthropic prompt-cache breakpoints the gateway adds (`providers.anthropic.cache_points`)."""


class ModelListEntry(_Section):
    model_name: str = Field(min_length=1)
    litellm_params: LiteLLMParams
    model_info: dict[str, Any] | None = None
    mcp_servers: list[str] | None = None
    """Toolhub: hub MCP servers whose tools this alias offers to the model by default (the tool loop)."""
    cache_tool_loops: bool | None = None
    """Toolhub: cache answers of requests in which hub tools ran (off: tools read live data)."""


class GeneralSettings(_Section):
    master_key: str | None = None
    database_url: str | None = None
    max_request_size_mb: float | None = Field(default=None, gt=0)
    redis_url: str | None = None
    usage_spill_path: str | None = None
    """Toolhub: where usage records go while the database is down (replayed when it is back)."""
    shutdown_grace_seconds: float | None = Field(default=None, ge=0)
    num_workers: int | None = Field(default=None, ge=1)
    """LiteLLM's key: worker processes of `toolhub serve` (`--workers` wins)."""
    max_tool_rounds: int | None = Field(default=None, ge=1, le=100)
    max_tool_result_chars: int | None = Field(default=None, ge=100)
    tool_loop_keepalive_seconds: float | None = Field(default=None, gt=0)
    key_cache_seconds: float | None = Field(default=None, ge=0)
    mcp_allowed_hosts: list[str] | None = None
    """Host values (e.g. `hub.example.com`, `hub.example.com:*`) /mcp and /sse accept behind a reverse proxy."""
    mcp_tool_separator: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,3}$")
    mcp_max_sessions: int | None = Field(default=None, ge=1)
    """Toolhub: open MCP sessions per process, every endpoint together (hub/mcp/admission.py)."""
    mcp_max_sessions_per_key: int | None = Field(default=None, ge=1)
    """Toolhub: open MCP sessions per virtual key (the master key is exempt)."""
    replica_url: str | None = Field(default=None, pattern=r"^https?://[^/?#\s]+/?$")
    """Toolhub: this replica's own base URL as other replicas reach it (`http://10.0.0.5:4000`); with `redis_url`,
    a request for an MCP session held by another replica is forwarded there (hub/mcp/forward)."""

    @field_validator("replica_url")
    @classmethod
    def _replica_url_parses(cls, value: str | None) -> str | None:
        """The pattern lets `http://fd00::1:4000` through, which no HTTP client can use: an IPv6 address needs
        brackets. Refused here, at load, rather than as a failed hop for every forwarded request."""
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.netloc.count(":") > 1 and not parts.netloc.startswith("["):
            raise ValueError("an IPv6 address goes in brackets: http://[fd00::1]:4000")
        try:
            parts.port  # noqa: B018 (raises on a port that is no number)
        except ValueError as exc:
            raise ValueError(f"not a usable URL ({exc})") from None
        if not parts.hostname:
            raise ValueError("needs a host")
        return value

    background_health_checks: bool | None = None
    health_check_interval: float | None = Field(default=None, gt=0)
    json_logs: bool | None = None
    """LiteLLM's key: every log record as one JSON object per line."""
    access_log: Literal["errors", "all", "off"] | None = None
    """Toolhub: which answers leave an access log line (default `errors`: 4xx and 5xx)."""
    maximum_spend_logs_retention_period: str | None = None
    """LiteLLM's key: spend logs older than this (`30d`) move into daily aggregates (hub/ops/retention.py)."""
    maximum_spend_logs_retention_interval: str | None = None
    """LiteLLM's key: how often retention runs (default `1h`)."""
    responses_retention_period: str | None = None
    """Stored responses (`/v1/responses`) older than this (`30d`) are deleted (hub/api/responses/retention.py)."""
    otel: OtelSpec | None = None
    """Toolhub: OpenTelemetry traces (hub/ops/tracing); the `OTEL_*` variables fill what it leaves out."""
    tool_exposure: Literal["all", "search", "auto"] | None = None
    """Toolhub: every hub tool listed, or the search meta-tools (hub/catalog); unset: all, except to clients
    known to refuse that many (Cursor 40, VS Code 128)."""
    tool_exposure_threshold: int | None = Field(default=None, ge=1)
    """Toolhub: with `auto`, search when a caller would see more tools than this (default 40)."""
    always_expose: list[str] | None = None
    """Toolhub: tools listed next to the meta-tools in search mode (exposed names, `server/tool`, patterns)."""
    tool_result_ttl_seconds: float | None = Field(default=None, gt=0)
    """Toolhub: how long tool results over `max_tool_result_chars` are kept for `hub__read_result` (default 1 h)."""


class CacheParams(_Section):
    """LiteLLM's `litellm_settings.cache_params` (plus Toolhub's bounds of the local LRU)."""

    type: Literal["local", "redis"] = "local"
    ttl: float | None = Field(default=None, gt=0)
    namespace: str | None = Field(default=None, min_length=1)
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    password: str | None = None
    redis_url: str | None = None
    supported_call_types: list[str] | None = None
    max_entries: int | None = Field(default=None, ge=1)
    max_bytes: int | None = Field(default=None, ge=1024)
    inflight_wait_seconds: float | None = Field(default=None, ge=0)


class LiteLLMSettings(RouterKeys):  # LiteLLM reads the router keys (hub/router/config.py) here too
    drop_params: bool | None = None
    request_timeout: float | None = Field(default=None, gt=0)
    cache: bool | None = None
    cache_params: CacheParams | None = None


class RouterSettings(RouterKeys):
    """Retries, cooldowns, balancing and fallbacks (`hub.router.config.RouterKeys`)."""


class ConfigFile(_Section):
    model_list: list[ModelListEntry] = Field(default_factory=list[ModelListEntry])
    general_settings: GeneralSettings = GeneralSettings()
    litellm_settings: LiteLLMSettings = LiteLLMSettings()
    router_settings: RouterSettings = RouterSettings()
    mcp_servers: dict[str, McpServerSpec] = Field(default_factory=dict[str, McpServerSpec])
    environment_variables: dict[str, str] | None = None
