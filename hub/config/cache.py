"""The response cache's settings (hub/cache), read from LiteLLM's `litellm_settings.cache` and `cache_params`, and
Anthropic's prompt-cache injection points from `litellm_params.cache_control_injection_points`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from hub.config.schema import CacheParams, LiteLLMParams, LiteLLMSettings
from providers.registry import split_model


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """The response cache (hub/cache): `litellm_settings.cache: true` with its `cache_params`."""

    type: str = "local"
    ttl: float = 600.0
    namespace: str | None = None
    redis_url: str | None = field(default=None, repr=False)
    max_entries: int = 10_000
    max_bytes: int = 64 * 1024 * 1024
    inflight_wait: float = 30.0
    """How long an identical request waits for one in flight before calling the upstream itself."""
    embeddings: bool = True
    """Whether /v1/embeddings answers are cached too (`supported_call_types` naming `embedding`, or unset)."""


def cache_settings(settings: LiteLLMSettings, redis_url: str | None) -> CacheSettings | None:
    """The cache's settings, or None when `litellm_settings.cache` is off or caches no chat completions."""
    params = settings.cache_params or CacheParams()
    if not settings.cache or not _caches(params.supported_call_types, "completion"):
        return None
    url = params.redis_url
    if url is None and params.host:
        auth = f":{quote(params.password, safe='')}@" if params.password else ""
        url = f"redis://{auth}{params.host}:{params.port or 6379}/0"
    defaults = CacheSettings()
    return CacheSettings(
        type=params.type,
        ttl=params.ttl or defaults.ttl,
        namespace=params.namespace,
        redis_url=url or redis_url,
        max_entries=params.max_entries or defaults.max_entries,
        max_bytes=params.max_bytes or defaults.max_bytes,
        inflight_wait=defaults.inflight_wait if params.inflight_wait_seconds is None else params.inflight_wait_seconds,
        embeddings=_caches(params.supported_call_types, "embedding"),
    )


def cache_points(kind: str, params: LiteLLMParams) -> dict[str, Any]:
    """Injection points go to Anthropic deployments (others have no `cache_control`: reported ignored)."""
    points = params.cache_control_injection_points
    if not points or kind != "anthropic":
        return {}
    return {"cache_control_injection_points": [p.model_dump(exclude_none=True) for p in points]}


def points_ignored(params: LiteLLMParams) -> bool:
    return bool(params.cache_control_injection_points) and split_model(params.model)[0] != "anthropic"


def _caches(call_types: list[str] | None, call: str) -> bool:
    """LiteLLM's `supported_call_types` name the sync and async call (`completion`, `acompletion`); unset: all."""
    return call_types is None or bool({call, f"a{call}"} & set(call_types))
