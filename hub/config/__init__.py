"""The YAML config, in the format LiteLLM users already have, read once into explicit objects (its schema:
`hub.config.schema`).

This package is the only code that reads files or the environment for settings (the file: `hub.config.document`;
`os.environ/NAME` references: `hub.config.env`). Secrets appear in the YAML as
`os.environ/NAME`; a reference to an unset variable does not fail start: the model (or MCP server) that needs it is
served as unavailable and its requests get an error naming the variable. A malformed file, a wrong type or an unknown
provider fails start with the path of the offending key. Keys we read but do not implement are reported once at start
(`Config.ignored`), never silently dropped.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import ValidationError

from hub.catalog.meta import meta_clash
from hub.config.cache import CacheSettings, cache_points, cache_settings, points_ignored
from hub.config.checks import MODEL_INFO_PRICES, check_mcp_launch, model_info_prices, url_problem
from hub.config.document import read_document
from hub.config.env import ENV_PREFIX as ENV_PREFIX, join, missing_under, resolve_env  # ENV_PREFIX: for hub.cli
from hub.config.errors import ConfigError
from hub.config.schema import (
    NUMBER_TYPES,
    REQUEST_DEFAULT_PARAMS,
    REQUEST_DEFAULT_TYPES,
    ConfigFile,
    GeneralSettings,
    ModelListEntry,
)
from hub.mcp.config import McpServerConfig, server_problem
from hub.ops.tracing.config import TracingSettings, tracing_settings
from hub.router.config import STRATEGIES, RouterPolicy, fallback_problems, router_policy
from providers.base import Deployment
from providers.registry import PROVIDERS, split_model

_T = TypeVar("_T")
TraceMode = Literal["none", "reasoning", "content"]
TRACE_MODES: tuple[TraceMode, ...] = ("none", "reasoning", "content")
"""`model_info.tool_loop_trace` (hub/loop/trace.py)."""
MODEL_INFO_READ = frozenset({"supported_endpoints", "mode", "tool_loop_trace", *MODEL_INFO_PRICES})
DEFAULT_CONFIG = Path("configs/config.example.yaml")


MCP_MAX_SESSIONS = 10_000
"""Open MCP sessions per process, every endpoint together (the SDK's own default, per manager)."""
MCP_MAX_SESSIONS_PER_KEY = 100
"""Open MCP sessions per virtual key, every endpoint together (1 % of `MCP_MAX_SESSIONS`)."""


@dataclass(frozen=True, slots=True)
class ModelRoute:
    """One deployment behind a public model alias."""

    alias: str
    deployment: Deployment
    missing_env: tuple[str, ...] = ()
    """Environment variables the entry references but that are unset: requests get an error naming them."""
    mcp_servers: tuple[str, ...] = ()
    input_cost_per_token: float | None = None
    output_cost_per_token: float | None = None
    cache_read_input_token_cost: float | None = None
    rpm: int | None = None
    tpm: int | None = None
    order: int | None = None
    """Lower first; a higher order serves only while every lower one is down (LiteLLM's `order`)."""
    weight: float | None = None
    cache_tool_loops: bool = False
    responses_api: bool = False
    """`/v1/responses` goes to the upstream's own `/responses` (OpenAI-compatible providers; hub/api/responses)."""
    tool_loop_trace: TraceMode = "none"
    """`model_info.tool_loop_trace`: how the tool loop shows hub tool calls to chat apps (hub/loop/trace.py)."""


@dataclass(frozen=True)
class Config:
    """Everything the server needs, resolved and validated."""

    models: Mapping[str, tuple[ModelRoute, ...]]
    master_key: str | None = field(default=None, repr=False)
    database_url: str | None = field(default=None, repr=False)
    redis_url: str | None = field(default=None, repr=False)
    usage_spill_path: str | None = None
    max_request_bytes: int = 16 * 1024 * 1024
    shutdown_grace_seconds: float = 30.0
    num_workers: int = 1
    """Worker processes of `toolhub serve` (LiteLLM's `num_workers`; `--workers` wins; hub/scale)."""
    max_tool_rounds: int = 10
    max_tool_result_chars: int = 20_000
    """Tool results longer than this are cut, with a marker, before they go back to the model."""
    tool_loop_keepalive_seconds: float = 10.0
    """A streamed tool loop sends an SSE comment when nothing was sent for this long (while tools run)."""
    key_cache_seconds: float = 5.0
    """How long a process trusts what it read of a virtual key (blocks, scopes, and other processes' spend)."""
    mcp_allowed_hosts: tuple[str, ...] = ()
    """Extra hosts accepted by the MCP endpoints' DNS-rebinding protection (loopback is always accepted)."""
    mcp_tool_separator: str = "__"
    """Between server and tool in hub tool names: `<server>__<tool>`."""
    mcp_max_sessions: int = MCP_MAX_SESSIONS
    """Open MCP sessions per process (`hub.mcp.admission`)."""
    mcp_max_sessions_per_key: int = MCP_MAX_SESSIONS_PER_KEY
    """Open MCP sessions per virtual key (`hub.mcp.admission`)."""
    replica_url: str | None = None
    """This replica's base URL for other replicas: with `redis_url`, MCP sessions work without stickiness."""
    worker_url: str | None = None
    """Not a config key: in a worker of `toolhub serve --workers N`, the URL of its own port, advertised in place of
    `replica_url` so that hops for its MCP sessions reach this worker (hub/scale/supervisor.py)."""
    worker_registry: str | None = None
    """Not a config key: the workers' directory a worker advertises `worker_url` in when the server lacks Redis or
    `replica_url` (hub/mcp/forward/local.py)."""
    mcp_servers: Mapping[str, McpServerConfig] = field(default_factory=dict[str, McpServerConfig])
    router: RouterPolicy = field(default_factory=RouterPolicy)
    cache: CacheSettings | None = None
    """The response cache; None when `litellm_settings.cache` is off."""
    json_logs: bool = False
    access_log: Literal["errors", "all", "off"] = "errors"
    spend_logs_retention: float | None = None
    """Seconds spend logs are kept before they move into daily aggregates; None: kept forever."""
    spend_logs_retention_interval: float = 3600.0
    responses_retention: float | None = None
    """Seconds stored responses are kept (`responses_retention_period`); None: until deleted."""
    otel: TracingSettings | None = None
    """OpenTelemetry traces; None: off (hub/ops/tracing)."""
    tool_exposure: Literal["all", "search", "auto"] | None = None
    """Hub tools listed in full or as search meta-tools (hub/catalog); None: by the client's known limit."""
    tool_exposure_threshold: int = 40
    always_expose: tuple[str, ...] = ()
    tool_result_ttl_seconds: float = 3600.0
    ignored: tuple[str, ...] = ()
    """Paths of keys that were read but are not implemented, or have no effect where set (`hub.config.effect`);
    reported once at start."""
    source: str = "<memory>"


def load_config(path: str | Path, environ: Mapping[str, str] | None = None, *, serving: bool = True) -> Config:
    """Read and validate a YAML config file (`serving=False`: for commands that serve no HTTP, see `parse_config`).

    Raises:
        ConfigError: whatever keeps the file from loading (unreadable, not UTF-8, not YAML, nested or aliased past
            the limits of `hub.config.document`, not a valid config); the message names the file or the key.
    """
    path = Path(path)
    raw = read_document(path)
    environ = os.environ if environ is None else environ
    return parse_config(raw if raw is not None else {}, environ, source=str(path), serving=serving)


def parse_config(raw: Any, environ: Mapping[str, str], *, source: str = "<memory>", serving: bool = True) -> Config:
    """Validate an already-parsed YAML document (see `load_config`).

    With `serving=False` (`check-config`, `tools`, `stdio`: no HTTP, no keys, no store) an unset master_key,
    database_url or redis_url reference is not an error: those commands never use them.

    Raises:
        ConfigError: the document is not a config that can be served; the message names the key when known.
    """
    try:
        return _parse(raw, environ, source, serving)
    except ConfigError:
        raise
    except Exception as exc:  # a check missing here must still refuse the file, not crash start or a running reload
        raise ConfigError("", f"{source} cannot be loaded: {type(exc).__name__}: {exc}") from exc


def _parse(raw: Any, environ: Mapping[str, str], source: str, serving: bool) -> Config:
    if not isinstance(raw, dict):
        raise ConfigError("", f"{source}: the top level must be a mapping of sections, got {type(raw).__name__}")
    missing: dict[str, str] = {}
    extra_env = raw.get("environment_variables")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    if isinstance(extra_env, dict):  # LiteLLM's section of variables; the real environment wins
        environ = {**{str(k): str(v) for k, v in extra_env.items()}, **environ}  # pyright: ignore[reportUnknownVariableType]
    resolved = resolve_env(raw, environ, "", missing)
    try:
        file = ConfigFile.model_validate(resolved)
    except ValidationError as exc:
        raise _config_error(exc, missing) from exc
    general = file.general_settings
    if serving:
        _require_set(missing, "master_key", "run without authentication")
        _require_set(missing, "database_url", "use the embedded SQLite database")
        _require_set(missing, "redis_url", "keep rate limits in this process only")
    return Config(
        models=_models(file, missing),
        master_key=general.master_key,
        database_url=general.database_url or environ.get("DATABASE_URL") or None,
        redis_url=general.redis_url,
        usage_spill_path=general.usage_spill_path,
        max_request_bytes=int((general.max_request_size_mb or 16) * 1024 * 1024),
        shutdown_grace_seconds=30.0 if general.shutdown_grace_seconds is None else general.shutdown_grace_seconds,
        num_workers=general.num_workers or 1,
        max_tool_rounds=general.max_tool_rounds or 10,
        max_tool_result_chars=general.max_tool_result_chars or 20_000,
        tool_loop_keepalive_seconds=general.tool_loop_keepalive_seconds or 10.0,
        key_cache_seconds=5.0 if general.key_cache_seconds is None else general.key_cache_seconds,
        mcp_allowed_hosts=tuple(general.mcp_allowed_hosts or ()),
        mcp_tool_separator=general.mcp_tool_separator or "__",
        mcp_max_sessions=general.mcp_max_sessions or MCP_MAX_SESSIONS,
        mcp_max_sessions_per_key=general.mcp_max_sessions_per_key or MCP_MAX_SESSIONS_PER_KEY,
        replica_url=general.replica_url,
        mcp_servers=_mcp_servers(
            file, missing, None if source == "<memory>" else Path(source).parent, general.mcp_tool_separator or "__"
        ),
        router=_router(file),
        cache=cache_settings(file.litellm_settings, general.redis_url),
        json_logs=bool(general.json_logs),
        access_log=general.access_log or "errors",
        spend_logs_retention=_duration(general, "maximum_spend_logs_retention_period"),
        spend_logs_retention_interval=_duration(general, "maximum_spend_logs_retention_interval") or 3600.0,
        responses_retention=_duration(general, "responses_retention_period"),
        otel=_otel(general, environ),
        tool_exposure=general.tool_exposure,
        tool_exposure_threshold=general.tool_exposure_threshold or 40,
        always_expose=tuple(general.always_expose or ()),
        tool_result_ttl_seconds=general.tool_result_ttl_seconds or 3600.0,
        ignored=tuple(_ignored(file)),
        source=source,
    )


def _require_set(missing: Mapping[str, str], key: str, otherwise: str) -> None:
    """A general setting that names an unset variable fails start: silently running without it would surprise."""
    path = f"general_settings.{key}"
    if path in missing:
        raise ConfigError(
            path, f"environment variable {missing[path]} is not set; set it, or remove {key} to {otherwise}"
        )


def config_path(explicit: str | None) -> Path:
    """The config file to serve: the argument, else `TOOLHUB_CONFIG`, else the example config."""
    return Path(explicit or os.environ.get("TOOLHUB_CONFIG") or DEFAULT_CONFIG)


def _config_error(exc: ValidationError, missing: Mapping[str, str]) -> ConfigError:
    """The first validation error at its key's path; a value that is None because its variable is unset says so."""
    first = exc.errors()[0]
    path = ""
    for part in first["loc"]:
        path = f"{path}[{part}]" if isinstance(part, int) else join(path, str(part))
    if path in missing:
        return ConfigError(path, f"environment variable {missing[path]} is not set, and this key needs a value")
    return ConfigError(path, f"{first['msg']} (got {first.get('input')!r})")


def _models(file: ConfigFile, missing: Mapping[str, str]) -> dict[str, tuple[ModelRoute, ...]]:
    settings, router = file.litellm_settings, file.router_settings
    models: dict[str, list[ModelRoute]] = {}
    for i, entry in enumerate(file.model_list):
        where = f"model_list[{i}]"
        params = entry.litellm_params
        kind, upstream = split_model(params.model)
        spec = PROVIDERS.get(kind)
        if spec is None:
            known = ", ".join(sorted(PROVIDERS))
            raise ConfigError(f"{where}.litellm_params.model", f"unknown provider {kind!r} (known: {known})")
        api_base = (params.api_base or params.base_url or spec.default_api_base or "").strip() or None  # YAML quoting
        missing_env = missing_under(missing, where)
        if api_base is None and not missing_env:
            raise ConfigError(f"{where}.litellm_params.api_base", f"provider {kind!r} needs an api_base")
        if api_base and (problem := url_problem(api_base)):
            raise ConfigError(f"{where}.litellm_params.api_base", problem)
        extras, prices = params.model_extra or {}, model_info_prices(entry.model_info, where)
        deployment = Deployment(
            provider=kind,
            model=upstream,
            api_base=api_base or "",
            api_key=params.api_key,
            timeout=params.timeout or router.timeout or settings.request_timeout or 600.0,
            stream_timeout=params.stream_timeout or router.stream_timeout or settings.stream_timeout,
            max_retries=params.max_retries or 0,  # router num_retries are the router's (hub/router)
            drop_params=_first_set(params.drop_params, settings.drop_params, True),
            params=_request_defaults(extras, f"{where}.litellm_params") | cache_points(kind, params),
            headers=params.extra_headers or {},
            fetch_private_urls=bool(params.allow_private_image_urls),
        )
        route = ModelRoute(
            alias=entry.model_name,
            deployment=deployment,
            missing_env=missing_env,
            mcp_servers=tuple(entry.mcp_servers or ()),
            input_cost_per_token=_or(params.input_cost_per_token, prices.get("input_cost_per_token")),
            output_cost_per_token=_or(params.output_cost_per_token, prices.get("output_cost_per_token")),
            cache_read_input_token_cost=_or(
                params.cache_read_input_token_cost, prices.get("cache_read_input_token_cost")
            ),
            rpm=params.rpm,
            tpm=params.tpm,
            order=params.order,
            weight=params.weight,
            cache_tool_loops=bool(entry.cache_tool_loops),
            responses_api=_responses_api(entry),
            tool_loop_trace=_trace(entry.model_info, where),
        )
        for server in route.mcp_servers:
            if server not in file.mcp_servers:
                raise ConfigError(f"{where}.mcp_servers", f"no MCP server named {server!r} in mcp_servers")
        models.setdefault(entry.model_name, []).append(route)
    return {alias: tuple(routes) for alias, routes in models.items()}


def _mcp_servers(file: ConfigFile, missing: Mapping[str, str], base_dir: Path | None,
                 separator: str) -> dict[str, McpServerConfig]:  # fmt: skip
    """Every `mcp_servers` entry, stdio ones resolved against the config file's folder (see `hub.mcp.config`); none
    whose tools would be named like the search meta-tools (`hub.catalog.meta.meta_clash`)."""
    servers: dict[str, McpServerConfig] = {}
    for name, spec in file.mcp_servers.items():
        missing_env = missing_under(missing, f"mcp_servers.{name}")
        problem = server_problem(name, spec, missing_env)
        if problem is not None:
            raise ConfigError(f"mcp_servers.{name}", problem)
        if (clash := meta_clash(spec.alias or name, separator)) is not None:
            raise ConfigError(f"mcp_servers.{name}" + (".alias" if spec.alias else ""), clash)
        check_mcp_launch(spec, f"mcp_servers.{name}")
        servers[name] = McpServerConfig(name, spec.resolve_stdio(base_dir), missing_env)
    return servers


def _router(file: ConfigFile) -> RouterPolicy:
    general = file.general_settings
    policy = router_policy(file.router_settings, file.litellm_settings,
                           health_checks=bool(general.background_health_checks),
                           interval=general.health_check_interval)  # fmt: skip
    for path, problem in fallback_problems(policy, [e.model_name for e in file.model_list]):
        raise ConfigError(path, problem)
    return policy


def _duration(general: GeneralSettings, key: str) -> float | None:
    from hub.accounts.spend import parse_duration

    text = getattr(general, key)
    try:
        return None if text is None else parse_duration(text)
    except ValueError as exc:
        raise ConfigError(f"general_settings.{key}", str(exc)) from exc


def _otel(general: GeneralSettings, environ: Mapping[str, str]) -> TracingSettings | None:
    try:
        return tracing_settings(general.otel, environ)
    except ValueError as exc:
        raise ConfigError("general_settings.otel", str(exc)) from exc


def _responses_api(entry: ModelListEntry) -> bool:
    """LiteLLM's `model_info.supported_endpoints` naming `/v1/responses`, or `litellm_params.use_responses_api`."""
    endpoints = (entry.model_info or {}).get("supported_endpoints") or ()
    return (entry.litellm_params.model_extra or {}).get("use_responses_api") is True or "/v1/responses" in endpoints


def _trace(model_info: Mapping[str, Any] | None, where: str) -> TraceMode:
    value = (model_info or {}).get("tool_loop_trace", "none")
    if value not in TRACE_MODES:
        raise ConfigError(f"{where}.model_info.tool_loop_trace", f"must be one of {', '.join(TRACE_MODES)}")
    return value


def _request_defaults(extras: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The request parameters among `litellm_params`' extra keys, each of the type the API takes."""
    for key, value in extras.items():
        types = REQUEST_DEFAULT_TYPES.get(key)
        if types is None or value is None:
            continue
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            names = "a number" if types == NUMBER_TYPES else " or ".join(_TYPE_NAMES[t] for t in types)
            raise ConfigError(f"{where}.{key}", f"must be {names} (got {value!r})")
    return {k: v for k, v in extras.items() if k in REQUEST_DEFAULT_PARAMS}


_TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string", list: "a list",
               dict: "a mapping"}  # fmt: skip


def _or(value: _T | None, otherwise: _T | None) -> _T | None:
    return otherwise if value is None else value


def _first_set(*values: _T | None) -> _T:
    for value in values:
        if value is not None:
            return value
    raise ValueError("no default")


def _ignored(file: ConfigFile) -> list[str]:
    found = list(file.model_extra or {})
    for section in ("general_settings", "litellm_settings", "router_settings"):
        found += [f"{section}.{k}" for k in getattr(file, section).model_extra or {}]
    for i, entry in enumerate(file.model_list):
        found += [f"model_list[{i}].{k}" for k in entry.model_extra or {}]
        found += [f"model_list[{i}].litellm_params.{k}" for k in entry.litellm_params.model_extra or {}
                  if k not in REQUEST_DEFAULT_PARAMS and k != "use_responses_api"]  # fmt: skip
        if points_ignored(entry.litellm_params):
            found.append(f"model_list[{i}].litellm_params.cache_control_injection_points")
        found += [f"model_list[{i}].model_info.{k}" for k in entry.model_info or {} if k not in MODEL_INFO_READ]
    for name, spec in file.mcp_servers.items():
        found += [f"mcp_servers.{name}.{k}" for k in [*(spec.model_extra or {}), *spec.unused_session_keys()]]
    cache_params = file.litellm_settings.cache_params
    if cache_params is not None:
        found += [f"litellm_settings.cache_params.{k}" for k in cache_params.model_extra or {}]
    for section in ("router_settings", "litellm_settings"):
        if getattr(file, section).routing_strategy not in (None, *STRATEGIES):
            found.append(f"{section}.routing_strategy")
    return found
