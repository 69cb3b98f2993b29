"""`/health/readiness` over a real socket with real stdio MCP upstreams: healthy, degraded, strict mode."""

from __future__ import annotations

import sys

import httpx2
import pytest

import hub.mcp.upstream
from hub.errors import BadRequest
from hub.health import strict_flag
from tests.mcp.conftest import hub_app, running, tool_server

DOWN = {"command": sys.executable, "args": ["-c", "import sys; sys.stderr.write('no database\\n'); sys.exit(3)"]}


@pytest.fixture(autouse=True)
def slow_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """A down upstream stays down (not reconnecting) while a test looks at it: the first retry comes after 60 s."""
    monkeypatch.setattr(hub.mcp.upstream, "BACKOFF", (60.0, 60.0))


def test_a_hub_whose_only_upstream_is_down_is_degraded_naming_the_server_and_its_error() -> None:
    with running(hub_app({"db": DOWN})) as url:
        relaxed = httpx2.get(f"{url}/health/readiness")
        strict = httpx2.get(f"{url}/health/readiness", params={"strict": "true"})
    assert relaxed.status_code == 200
    body = relaxed.json()
    error = body["degraded"][0].pop("error")
    assert {**body, "version": "-"} == {
        "status": "degraded",
        "version": "-",
        "models": 0,
        "mcp": {"db": "down"},
        "database": "connected",
        "degraded": [{"component": "mcp_server", "name": "db", "state": "down"}],
    }
    assert error == "MCP error -32000: Connection closed (retrying in 60 s)"
    assert strict.status_code == 503
    assert strict.json()["status"] == "degraded"
    assert [entry["name"] for entry in strict.json()["degraded"]] == ["db"]


def test_a_hub_with_its_upstreams_connected_is_healthy_in_strict_mode_too() -> None:
    with running(hub_app({"tool": tool_server()})) as url:
        relaxed = httpx2.get(f"{url}/health/readiness")
        strict = httpx2.get(f"{url}/health/readiness?strict=1")
    assert (relaxed.status_code, strict.status_code) == (200, 200)
    assert strict.json() == relaxed.json()
    assert strict.json()["status"] == "healthy"
    assert "degraded" not in strict.json()


def test_one_down_upstream_among_working_ones_is_listed_alone() -> None:
    with running(hub_app({"tool": tool_server(), "db": DOWN})) as url:
        body = httpx2.get(f"{url}/health/readiness").json()
    assert body["status"] == "degraded"
    assert body["mcp"] == {"tool": "ready", "db": "down"}
    assert [entry["name"] for entry in body["degraded"]] == ["db"]


def test_a_strict_value_other_than_true_or_false_is_a_400_in_openai_shape() -> None:
    with running(hub_app({})) as url:
        response = httpx2.get(f"{url}/health/readiness?strict=yes-please")
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": "strict must be true or false, got 'yes-please'.",
            "type": "invalid_request_error",
            "param": "strict",
            "code": None,
        }
    }


@pytest.mark.parametrize(("value", "expected"), [(None, False), ("true", True), ("TRUE", True), ("1", True),
                                                 ("false", False), ("0", False)])  # fmt: skip
def test_strict_flag_values(value: str | None, expected: bool) -> None:
    assert strict_flag(value) is expected


def test_strict_flag_refuses_other_values() -> None:
    with pytest.raises(BadRequest) as refused:
        strict_flag("")
    assert refused.value.param == "strict"
