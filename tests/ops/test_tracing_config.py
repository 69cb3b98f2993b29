"""`general_settings.otel` and the `OTEL_*` variables, read into `TracingSettings`."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from hub.ops.tracing.config import OtelSpec, TracingSettings, tracing_settings


def test_tracing_is_off_without_config_or_variables() -> None:
    assert tracing_settings(None, {}) is None
    assert tracing_settings(None, {"OTEL_SERVICE_NAME": "x"}) is None


def test_an_otel_section_turns_tracing_on_with_the_collectors_default_http_endpoint() -> None:
    assert tracing_settings(OtelSpec(), {}) == TracingSettings(endpoint="http://localhost:4318/v1/traces")


def test_the_config_keys_are_read() -> None:
    spec = OtelSpec(endpoint="https://otel.example.com:4318/", service_name="gw", capture_content=True,
                    headers={"x-key": "k"}, sample_ratio=0.25, timeout=3)  # fmt: skip
    assert tracing_settings(spec, {}) == TracingSettings(
        endpoint="https://otel.example.com:4318/v1/traces", service_name="gw", capture_content=True,
        headers={"x-key": "k"}, sampler="parentbased_traceidratio", sample_ratio=0.25, timeout=3,
    )  # fmt: skip


def test_an_endpoint_that_names_the_traces_path_is_kept() -> None:
    settings = tracing_settings(OtelSpec(endpoint="http://c:4318/custom/v1/traces"), {})
    assert settings is not None and settings.endpoint == "http://c:4318/custom/v1/traces"


def test_the_standard_variables_turn_tracing_on_and_fill_every_setting() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
        "OTEL_SERVICE_NAME": "toolhub-eu",
        "OTEL_EXPORTER_OTLP_HEADERS": "api-key=s%3Dcret, tenant = t1",
        "OTEL_TRACES_SAMPLER": "traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.1",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod",
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true",
    }
    assert tracing_settings(None, env) == TracingSettings(
        endpoint="http://collector:4318/v1/traces", service_name="toolhub-eu", capture_content=True,
        headers={"api-key": "s=cret", "tenant": "t1"}, sampler="traceidratio", sample_ratio=0.1,
        resource={"deployment.environment": "prod"},
    )  # fmt: skip


def test_the_traces_endpoint_variable_is_used_as_it_is_and_wins_over_the_base_one() -> None:
    env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://a:9/traces", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://b:4318"}
    settings = tracing_settings(None, env)
    assert settings is not None and settings.endpoint == "http://a:9/traces"


def test_config_keys_win_over_variables() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:4318", "OTEL_SERVICE_NAME": "env",
           "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://env2:4318/v1/traces"}  # fmt: skip
    settings = tracing_settings(OtelSpec(endpoint="http://cfg:4318", service_name="cfg"), env)
    assert settings is not None
    assert (settings.endpoint, settings.service_name) == ("http://cfg:4318/v1/traces", "cfg")


def test_grpc_keeps_the_address_as_given() -> None:
    settings = tracing_settings(None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317",
                                       "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})  # fmt: skip
    assert settings is not None and (settings.protocol, settings.endpoint) == ("grpc", "http://c:4317")
    assert tracing_settings(OtelSpec(protocol="grpc"), {}) == TracingSettings(
        endpoint="http://localhost:4317", protocol="grpc"
    )


@pytest.mark.parametrize(
    "env",
    [
        {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"},
        {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"},
    ],
)
def test_the_standard_switches_turn_it_off(env: dict[str, str]) -> None:
    assert tracing_settings(None, env) is None


def test_otel_traces_exporter_otlp_alone_turns_it_on() -> None:
    assert tracing_settings(None, {"OTEL_TRACES_EXPORTER": "otlp"}) is not None


def test_enabled_false_turns_it_off_whatever_the_variables_say() -> None:
    assert tracing_settings(OtelSpec(enabled=False), {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}) is None


@pytest.mark.parametrize(
    ("spec", "env", "words"),
    [
        (OtelSpec(), {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "'http/json' is not supported"),
        (OtelSpec(), {"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER 'sometimes' is not one of"),
        (OtelSpec(), {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "x"}, "is not a number"),
        (OtelSpec(), {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, "between 0 and 1"),
        (OtelSpec(), {"OTEL_EXPORTER_OTLP_HEADERS": "novalue"}, "'novalue' is not key=value"),
        (OtelSpec(endpoint="ftp://c"), {}, "is not an http(s) URL"),
    ],
)
def test_malformed_settings_are_refused_with_their_name(spec: OtelSpec, env: dict[str, str], words: str) -> None:
    with pytest.raises(ValueError) as caught:
        tracing_settings(spec, env)
    assert words in str(caught.value)


def test_an_unknown_or_mistyped_key_in_the_section_is_refused() -> None:
    with pytest.raises(ValidationError):
        OtelSpec.model_validate({"endpont": "http://c:4318"})
    with pytest.raises(ValidationError):
        OtelSpec.model_validate({"sample_ratio": 2})


def test_grpc_without_grpcio_is_refused_with_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "grpc" else real(name))
    with pytest.raises(ValueError) as caught:
        tracing_settings(OtelSpec(protocol="grpc"), {})
    assert "pip install 'toolhub[otel]'" in str(caught.value)
    assert tracing_settings(OtelSpec(), {}) is not None  # OTLP/HTTP needs no extra package
