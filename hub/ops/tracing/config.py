"""`general_settings.otel` and the standard `OTEL_*` variables, read into `TracingSettings` (off by default).

Config keys win over the environment; the environment fills the gaps. Tracing is on when `general_settings.otel` is
present (and not `enabled: false`), or, without it, when `OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT` is set or
`OTEL_TRACES_EXPORTER` names `otlp`. `OTEL_SDK_DISABLED=true` and `OTEL_TRACES_EXPORTER=none` turn it off.
The environment comes in as a mapping from `hub.config` (the only reader of `os.environ`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field

Protocol = Literal["http/protobuf", "grpc"]
SAMPLERS = frozenset({"always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off",
                      "parentbased_traceidratio"})  # fmt: skip
_DEFAULT_ENDPOINTS: dict[Protocol, str] = {"http/protobuf": "http://localhost:4318", "grpc": "http://localhost:4317"}
_TRUE = ("true", "1", "yes", "on")


class OtelSpec(BaseModel):
    """`general_settings.otel` as written in the file (unknown keys are refused: a typo would silently disable)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool | None = None
    endpoint: str | None = Field(default=None, min_length=1)
    """OTLP base URL (`http://collector:4318`; `/v1/traces` is added for HTTP unless present) or gRPC address."""
    protocol: Literal["http/protobuf", "http", "grpc"] | None = None
    service_name: str | None = Field(default=None, min_length=1)
    capture_content: bool | None = None
    """Put prompts, completions, tool arguments and results on spans (off: they may hold personal data)."""
    headers: dict[str, str] | None = None
    sample_ratio: float | None = Field(default=None, ge=0, le=1)
    """The share of new traces kept (OpenTelemetry's `parentbased_traceidratio`): a request whose `traceparent` says
    "sampled" is recorded even at 0, as the caller decided (the W3C flag is how a trace stays whole across services).
    To cap what callers can make the gateway record, set `OTEL_TRACES_SAMPLER=traceidratio` and no `sample_ratio`."""
    timeout: float | None = Field(default=None, gt=0)
    """Seconds an export may take (default 10)."""


@dataclass(frozen=True, slots=True)
class TracingSettings:
    """Where and how spans are exported."""

    endpoint: str
    protocol: Protocol = "http/protobuf"
    service_name: str = "toolhub"
    capture_content: bool = False
    headers: Mapping[str, str] = field(default_factory=dict[str, str], repr=False)
    sampler: str = "parentbased_always_on"
    sample_ratio: float = 1.0
    timeout: float = 10.0
    resource: Mapping[str, str] = field(default_factory=dict[str, str])
    """Extra resource attributes (`OTEL_RESOURCE_ATTRIBUTES`)."""


def tracing_settings(spec: OtelSpec | None, environ: Mapping[str, str]) -> TracingSettings | None:
    """The tracing a config and environment ask for; None when tracing is off.

    Raises:
        ValueError: a setting is malformed, or the OpenTelemetry packages for the protocol are not installed.
    """
    if not _enabled(spec, environ):
        return None
    spec = spec or OtelSpec()
    protocol = _protocol(spec, environ)
    sampler, ratio = _sampler(spec, environ)
    resource = _pairs(environ.get("OTEL_RESOURCE_ATTRIBUTES", ""), "OTEL_RESOURCE_ATTRIBUTES")
    settings = TracingSettings(
        endpoint=_endpoint(spec, environ, protocol),
        protocol=protocol,
        service_name=spec.service_name or environ.get("OTEL_SERVICE_NAME") or resource.get("service.name") or "toolhub",
        capture_content=_capture(spec, environ),
        headers=spec.headers if spec.headers is not None else _env_headers(environ),
        sampler=sampler,
        sample_ratio=ratio,
        timeout=spec.timeout or 10.0,
        resource=resource,
    )
    _check_installed(protocol)
    return settings


def _enabled(spec: OtelSpec | None, environ: Mapping[str, str]) -> bool:
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE:
        return False
    if spec is not None:
        return spec.enabled is not False
    exporters = {e.strip().lower() for e in environ.get("OTEL_TRACES_EXPORTER", "").split(",") if e.strip()}
    if "none" in exporters:
        return False
    named = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" in environ or "OTEL_EXPORTER_OTLP_ENDPOINT" in environ
    return named or "otlp" in exporters


def _protocol(spec: OtelSpec, environ: Mapping[str, str]) -> Protocol:
    name = spec.protocol or environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"  # fmt: skip
    name = name.strip().lower()
    if name in ("http/protobuf", "http"):
        return "http/protobuf"
    if name == "grpc":
        return "grpc"
    raise ValueError(f"protocol {name!r} is not supported: use 'http/protobuf' or 'grpc'")


def _endpoint(spec: OtelSpec, environ: Mapping[str, str], protocol: Protocol) -> str:
    full = None if spec.endpoint else environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    url = (full or spec.endpoint or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or _DEFAULT_ENDPOINTS[protocol]).strip()
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"endpoint {url!r} is not an http(s) URL")
    if protocol == "grpc" or full or parts.path.rstrip("/").endswith("/v1/traces"):
        return url
    return url.rstrip("/") + "/v1/traces"


def _sampler(spec: OtelSpec, environ: Mapping[str, str]) -> tuple[str, float]:
    if spec.sample_ratio is not None:
        return "parentbased_traceidratio", spec.sample_ratio
    name = environ.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").strip().lower()
    if name not in SAMPLERS:
        raise ValueError(f"OTEL_TRACES_SAMPLER {name!r} is not one of {', '.join(sorted(SAMPLERS))}")
    arg = environ.get("OTEL_TRACES_SAMPLER_ARG", "1.0")
    try:
        ratio = float(arg) if name.endswith("traceidratio") else 1.0
    except ValueError:
        raise ValueError(f"OTEL_TRACES_SAMPLER_ARG {arg!r} is not a number") from None
    if not 0 <= ratio <= 1:
        raise ValueError(f"OTEL_TRACES_SAMPLER_ARG {arg!r} is not between 0 and 1")
    return name, ratio


def _capture(spec: OtelSpec, environ: Mapping[str, str]) -> bool:
    if spec.capture_content is not None:
        return spec.capture_content
    return environ.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "").strip().lower() in _TRUE


def _env_headers(environ: Mapping[str, str]) -> dict[str, str]:
    name = "OTEL_EXPORTER_OTLP_TRACES_HEADERS"
    if name not in environ:
        name = "OTEL_EXPORTER_OTLP_HEADERS"
    return _pairs(environ.get(name, ""), name)


def _pairs(text: str, name: str) -> dict[str, str]:
    """W3C-baggage-style `k1=v1,k2=v2` with URL-encoded values (the OTLP header and resource variables)."""
    out: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{name}: {item.strip()!r} is not key=value")
        out[unquote(key.strip())] = unquote(value.strip())
    return out


def _check_installed(protocol: Protocol) -> None:
    """OTLP/HTTP needs nothing beyond the gateway's own dependencies; gRPC needs grpcio."""
    if protocol == "grpc" and importlib.util.find_spec("grpc") is None:
        raise ValueError("OTLP over gRPC needs the package 'grpcio': pip install 'toolhub[otel]'")
