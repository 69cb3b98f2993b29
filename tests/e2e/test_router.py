"""The router end to end: retries, fallbacks, cooldowns and health against fake upstreams on loopback."""

from __future__ import annotations

import time
from typing import Any

import httpx2
import openai
import pytest

from hub.config import parse_config
from hub.server import build_app
from tests.e2e import router_support as support
from tests.e2e.conftest import MASTER_KEY
from tests.e2e.router_support import Upstreams, answered_by, gateway, refused
from tests.fakes.faults import (
    ANTHROPIC_CONTEXT,
    ANTHROPIC_POLICY,
    GEMINI_CONTEXT,
    OPENAI_400,
    OPENAI_401,
    OPENAI_429,
    OPENAI_500,
    OPENAI_CONTEXT,
    OPENAI_POLICY,
    Fault,
)
from tests.support.servers import serve_app

upstream_servers, up = support.upstream_servers, support.up


def test_a_500_on_one_deployment_is_retried_on_the_other(up: Upstreams) -> None:
    up.a.faults.always = OPENAI_500
    with gateway([up.a.deployment("g"), up.b.deployment("g")], num_retries=1) as gw:
        responses = [gw.chat() for _ in range(4)]
    assert [r.parse().choices[0].message.content for r in responses] == ["You said: hello"] * 4
    assert [answered_by(r) for r in responses] == [
        ("g", f"{up.b.url}/v1", "1", "0"),
        ("g", f"{up.b.url}/v1", "0", "0"),
    ] * 2
    assert (up.a.faults.calls, up.b.faults.calls) == (2, 4)


def test_every_deployment_failing_falls_back_to_the_next_group(up: Upstreams) -> None:
    up.a.faults.always = up.b.faults.always = OPENAI_500
    models = [up.a.deployment("g"), up.b.deployment("g"), up.c.deployment("h")]
    with gateway(models, num_retries=1, fallbacks=[{"g": ["h"]}]) as gw:
        response = gw.chat()
        assert response.parse().choices[0].message.content == "You said: hello"
        assert answered_by(response) == ("h", f"{up.c.url}/v1", "1", "1")
        assert [(r.model_alias, r.upstream_model, r.status_code) for r in gw.usage.records] == [("g", "text", 200)]


def test_a_stream_that_fails_before_its_first_chunk_falls_back_into_one_normal_stream(up: Upstreams) -> None:
    up.a.faults.always = OPENAI_500
    models = [up.a.deployment("g"), up.anthropic.deployment("h")]
    with gateway(models, fallbacks=[{"g": ["h"]}]) as gw:
        with gw.client.chat.completions.with_streaming_response.create(
            model="g", messages=[{"role": "user", "content": "hello"}], stream=True
        ) as response:
            assert answered_by(response) == ("h", up.anthropic.url, "0", "1")
            chunks = list(response.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "You said: hello"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert gw.usage.records[0].provider == "anthropic"


def test_a_stream_that_fails_after_its_first_chunk_is_not_retried(up: Upstreams) -> None:
    models = [up.a.deployment("g", "midstream-error"), up.c.deployment("h")]
    with gateway(models, num_retries=2, fallbacks=[{"g": ["h"]}]) as gw:
        stream = gw.client.chat.completions.create(model="g", messages=[{"role": "user", "content": "x"}], stream=True)
        with pytest.raises(openai.APIError):
            list(stream)
    assert (up.a.faults.calls, up.c.faults.calls) == (1, 0)


@pytest.mark.parametrize(
    ("provider", "fault"),
    [("a", OPENAI_CONTEXT), ("anthropic", ANTHROPIC_CONTEXT), ("gemini", GEMINI_CONTEXT)],
)
def test_a_context_window_error_falls_back_to_context_window_fallbacks(
    up: Upstreams, provider: str, fault: Fault
) -> None:
    primary = getattr(up, provider)
    primary.faults.always = fault
    models = [primary.deployment("g"), up.b.deployment("generic"), up.c.deployment("big")]
    chains = {"fallbacks": [{"g": ["generic"]}], "context_window_fallbacks": [{"g": ["big"]}]}
    with gateway(models, num_retries=3, **chains) as gw:
        response = gw.chat()
    assert answered_by(response) == ("big", f"{up.c.url}/v1", "0", "1")
    assert (primary.faults.calls, up.b.faults.calls, up.c.faults.calls) == (1, 0, 1)


@pytest.mark.parametrize(
    ("provider", "fault", "model"),
    [("a", OPENAI_POLICY, None), ("anthropic", ANTHROPIC_POLICY, None), ("gemini", None, "gemini-3-blocked")],
)
def test_a_content_policy_refusal_falls_back_to_content_policy_fallbacks(
    up: Upstreams, provider: str, fault: Fault | None, model: str | None
) -> None:
    primary = getattr(up, provider)
    primary.faults.always = fault
    models = [primary.deployment("g", model), up.b.deployment("generic"), up.c.deployment("lenient")]
    chains = {"fallbacks": [{"g": ["generic"]}], "content_policy_fallbacks": [{"g": ["lenient"]}]}
    with gateway(models, num_retries=3, **chains) as gw:
        response = gw.chat()
    assert answered_by(response) == ("lenient", f"{up.c.url}/v1", "0", "1")
    assert (primary.faults.calls, up.b.faults.calls) == (1, 0)


@pytest.mark.parametrize(
    ("fault", "error"), [(OPENAI_400, openai.BadRequestError), (OPENAI_401, openai.AuthenticationError)]
)
def test_a_client_error_is_neither_retried_nor_fallen_back(
    up: Upstreams, fault: Fault, error: type[openai.APIStatusError]
) -> None:
    up.a.faults.always = fault
    with gateway([up.a.deployment("g"), up.c.deployment("h")], num_retries=3, fallbacks=[{"g": ["h"]}]) as gw:
        with pytest.raises(error) as exc_info:
            gw.chat()
    assert exc_info.value.response.headers["x-litellm-attempted-retries"] == "0"
    assert (up.a.faults.calls, up.c.faults.calls) == (1, 0)


def test_a_429_is_retried_after_its_retry_after(up: Upstreams) -> None:
    up.a.faults.queue = [OPENAI_429]  # retry-after: 1
    with gateway([up.a.deployment("g")], num_retries=1) as gw:
        response = gw.chat()
    assert answered_by(response) == ("g", f"{up.a.url}/v1", "1", "0")
    first, retry = up.a.faults.arrivals  # timed where the upstream sees them: no cold start of the gateway in it
    assert 1.0 <= retry - first < 2.0  # waited the retry-after (1 s, +25% jitter at most)


def test_a_429_with_retries_exhausted_is_relayed_with_the_upstreams_message(up: Upstreams) -> None:
    up.a.faults.always = OPENAI_429
    with gateway([up.a.deployment("g")]) as gw, pytest.raises(openai.RateLimitError) as exc_info:
        gw.chat()
    assert "Rate limit reached for gpt-5-mini" in exc_info.value.message


def test_cooldown_counts_are_exact(up: Upstreams) -> None:
    up.a.faults.always = OPENAI_500
    with gateway([up.a.deployment("g"), up.b.deployment("g")], num_retries=1, allowed_fails=2, cooldown_time=60) as gw:
        for _ in range(10):
            gw.chat()
    assert up.a.faults.calls == 3  # the third failure exceeds allowed_fails: no request goes there afterwards


def test_a_refused_connection_fails_over_in_milliseconds_and_cools_at_once(up: Upstreams) -> None:
    # retry_after: a wait before the retry would last 30 s at least, unmistakable on a loaded machine
    with gateway([refused("g"), up.b.deployment("g"), up.b.deployment("warm")], num_retries=1, retry_after=30) as gw:
        gw.chat("warm")  # the client's connection and the gateway's first request are not what is timed
        started = time.monotonic()
        first = gw.chat()
        assert time.monotonic() - started < 0.5
        later = [gw.chat() for _ in range(4)]
    assert answered_by(first)[2] == "1"
    assert [answered_by(r)[2] for r in later] == ["0"] * 4
    assert up.b.faults.calls == 6


def test_a_timing_out_deployment_cools_at_once(up: Upstreams) -> None:
    up.a.faults.always = Fault(200, {}, delay=2.0)
    models = [up.a.deployment("g", timeout=0.3), up.b.deployment("g")]
    with gateway(models, num_retries=1) as gw:
        responses = [gw.chat() for _ in range(4)]
    assert [answered_by(r)[1:3] for r in responses] == [(f"{up.b.url}/v1", "1")] + [(f"{up.b.url}/v1", "0")] * 3
    assert up.a.faults.calls == 1


def test_when_every_deployment_is_cooling_the_answer_is_a_503_naming_the_group(up: Upstreams) -> None:
    up.a.faults.always = up.b.faults.always = OPENAI_500
    with gateway([up.a.deployment("g"), up.b.deployment("g")], num_retries=1, allowed_fails=0, cooldown_time=30) as gw:
        with pytest.raises(openai.APIStatusError) as first:
            gw.chat()
        with pytest.raises(openai.APIStatusError) as second:
            gw.chat()
    assert first.value.status_code == 502
    assert second.value.status_code == 503
    assert 29 <= int(second.value.response.headers["retry-after"]) <= 30
    assert second.value.body == {
        "message": "No deployment of model group 'g' can take the request: all are cooling down after failures. "
        f"The first is back in {second.value.response.headers['retry-after']} s.",
        "type": "service_unavailable",
        "param": None,
        "code": "model_group_cooling",
    }
    assert up.a.faults.calls + up.b.faults.calls == 2


def test_mock_testing_fallbacks_takes_the_fallback_path_without_calling_the_primary(up: Upstreams) -> None:
    with gateway([up.a.deployment("g"), up.c.deployment("h")], fallbacks=[{"g": ["h"]}]) as gw:
        response = gw.chat(mock_testing_fallbacks=True)
    assert answered_by(response) == ("h", f"{up.c.url}/v1", "0", "1")
    assert up.a.faults.calls == 0


def test_per_request_fallbacks_and_num_retries(up: Upstreams) -> None:
    up.a.faults.always = OPENAI_500
    with gateway([up.a.deployment("g"), up.c.deployment("h")]) as gw:
        response = gw.chat(fallbacks=["h"], num_retries=2)
    assert answered_by(response) == ("h", f"{up.c.url}/v1", "2", "1")
    assert "fallbacks" not in up.c.fake.requests[-1] and "num_retries" not in up.c.fake.requests[-1]


def test_a_per_request_timeout_bounds_each_attempt(up: Upstreams) -> None:
    up.a.faults.always = Fault(200, {}, delay=3.0)
    with gateway([up.a.deployment("g"), up.c.deployment("h")], fallbacks=[{"g": ["h"]}]) as gw:
        response = gw.chat(timeout=0.4)
    assert answered_by(response)[0] == "h"
    [attempt], [fallback] = up.a.faults.arrivals, up.c.faults.arrivals  # timed at the upstreams: no cold start
    assert fallback - attempt < 1.5  # the attempt ended at its 0.4 s timeout, not with the upstream's answer (3 s)


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"fallbacks": ["nope"]}, "fallbacks"),
        ({"fallbacks": "h"}, "fallbacks"),
        ({"num_retries": "2"}, "num_retries"),
        ({"num_retries": 99}, "num_retries"),
        ({"timeout": -1}, "timeout"),
        ({"mock_testing_fallbacks": "yes"}, "mock_testing_fallbacks"),
    ],
)
def test_malformed_router_options_are_a_400_naming_the_param(
    up: Upstreams, extra: dict[str, object], param: str
) -> None:
    with gateway([up.a.deployment("g"), up.c.deployment("h")]) as gw, pytest.raises(openai.BadRequestError) as exc:
        gw.chat(**extra)
    assert exc.value.param == param  # pyright: ignore[reportAttributeAccessIssue]
    assert up.a.faults.calls == 0


def test_health_calls_every_deployment_and_reports_litellms_shape(up: Upstreams) -> None:
    dead = refused("g")
    with gateway([up.a.deployment("g"), dead, up.anthropic.deployment("h")]) as gw:
        assert httpx2.get(f"{gw.url}/health").status_code == 401
        report = httpx2.get(f"{gw.url}/health", headers={"Authorization": f"Bearer {MASTER_KEY}"}).json()
    assert [(e["model_name"], e["api_base"]) for e in report["healthy_endpoints"]] == [
        ("g", f"{up.a.url}/v1"),
        ("h", up.anthropic.url),
    ]
    assert [(e["model"], e["api_base"]) for e in report["unhealthy_endpoints"]] == [
        ("openai/text", dead["litellm_params"]["api_base"])
    ]
    assert "unreachable" in report["unhealthy_endpoints"][0]["error"]
    assert (report["healthy_count"], report["unhealthy_count"]) == (2, 1)


def checked(dead: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    """Wait (at most 30 s) until a background health check has found `dead` unhealthy, and so cooled it."""
    named = f"({dead['litellm_params']['api_base']})"
    deadline = time.monotonic() + 30
    while not any(r.name == "hub.router" and named in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, "no background health check ran"
        time.sleep(0.02)


def test_background_health_checks_cool_a_dead_deployment_before_any_request_hits_it(
    up: Upstreams, caplog: pytest.LogCaptureFixture
) -> None:
    general = {"background_health_checks": True, "health_check_interval": 0.2}
    dead = refused("g")
    with gateway([dead, up.b.deployment("g")], general, num_retries=1) as gw:
        checked(dead, caplog)
        responses = [gw.chat() for _ in range(4)]
    assert [answered_by(r)[1:3] for r in responses] == [(f"{up.b.url}/v1", "0")] * 4


def test_a_failed_health_check_does_not_cool_a_deployment_with_nothing_to_fail_over_to() -> None:
    with gateway([refused("solo")]) as gw:
        report = httpx2.get(f"{gw.url}/health", headers={"Authorization": f"Bearer {MASTER_KEY}"}).json()
        assert report["unhealthy_count"] == 1
        with pytest.raises(openai.APIStatusError) as exc_info:
            gw.chat("solo")
    assert exc_info.value.status_code == 502  # tried (and refused), not a 503 for a cooling group


def test_metrics_carry_each_deployments_router_state(up: Upstreams) -> None:
    up.a.faults.always = OPENAI_500
    raw = {"model_list": [up.a.deployment("g"), up.b.deployment("g")], "general_settings": {"master_key": MASTER_KEY},
           "router_settings": {"num_retries": 1, "allowed_fails": 0}}  # fmt: skip
    with serve_app(build_app(parse_config(raw, {}))) as url:
        auth = {"Authorization": f"Bearer {MASTER_KEY}"}
        body = {"model": "g", "messages": [{"role": "user", "content": "hi"}]}
        assert httpx2.post(f"{url}/v1/chat/completions", json=body, headers=auth).status_code == 200
        text = httpx2.get(f"{url}/metrics", headers=auth).text
    cooling = [line for line in text.splitlines() if line.startswith("toolhub_deployment_cooling{")]
    assert sorted((f"{up.a.url}/v1" in line, line.endswith(" 1.0")) for line in cooling) == [
        (False, False),
        (True, True),
    ]
    assert any(line.startswith("toolhub_deployment_retries{") and line.endswith(" 1.0") for line in text.splitlines())


def test_no_retry_waits_past_the_requests_timeout(up: Upstreams) -> None:
    up.a.faults.always = Fault(OPENAI_429.status, OPENAI_429.body, {"retry-after": "5"})
    with gateway([up.a.deployment("g"), up.b.deployment("warm")], num_retries=2) as gw:
        gw.chat("warm")  # the client's connection and the gateway's first request are not what is timed
        started = time.monotonic()
        with pytest.raises(openai.RateLimitError) as exc_info:
            gw.chat(timeout=2)
        elapsed = time.monotonic() - started  # not the gateway's shutdown after it
    assert elapsed < 1.0  # the upstream's retry-after (5 s) would end after the 2 s timeout
    assert exc_info.value.response.headers["retry-after"] == "5"
    assert up.a.faults.calls == 1
