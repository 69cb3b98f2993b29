"""Upstreams that stop reading, hang on optional listings, or crash right after connecting."""

from __future__ import annotations

import httpx2
import pytest

from tests.mcp.conftest import MASTER_KEY, eventually, hub_app, hub_of, running, script_server

AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}


def raw_server(mode: str, **options: object) -> dict[str, object]:
    return script_server("raw_server.py", mode, **options)


def rest_call(url: str, name: str, text: str) -> httpx2.Response:
    # The client timeout only turns a hang into a failure; the hub must answer well before it.
    body = {"name": name, "arguments": {"text": text}}
    try:
        return httpx2.post(f"{url}/mcp/tools/call", headers=AUTH, json=body, timeout=30)
    except httpx2.TimeoutException:
        pytest.fail(f"no answer to a call with {len(text)} characters")


def test_calls_to_an_upstream_that_stopped_reading_time_out_and_it_is_restarted() -> None:
    app = hub_app({"stuck": raw_server("stuck", call_timeout=1)})
    with running(app) as url:
        first = rest_call(url, "stuck__echo", "x")  # the upstream stops reading stdin here
        big = rest_call(url, "stuck__echo", "y" * 1_000_000)  # fills the pipe: the hub's writes block from now on
        after = rest_call(url, "stuck__echo", "z")
        eventually(lambda: hub_of(app).status()["stuck"]["attempts"] == 2, what="a restart of the stuck upstream")
        eventually(lambda: hub_of(app).upstreams["stuck"].healthy, what="the restarted upstream")
    for response in (first, big):
        assert response.status_code == 200
        assert response.json()["isError"] is True and "timed out" in response.json()["content"][0]["text"]
    # Depending on when the restart began, the last call timed out or found the upstream restarting.
    assert after.status_code in (200, 503)
    assert after.json().get("isError") is True or after.json()["error"]["code"] == "mcp_server_unavailable"


def test_an_upstream_that_hangs_listing_resources_still_serves_its_tools() -> None:
    app = hub_app({"hr": raw_server("hang_resources", connect_timeout=2)})
    with running(app) as url:
        called = rest_call(url, "hr__echo", "x")
        status = hub_of(app).status()["hr"]
    assert status["state"] == "ready"
    assert called.status_code == 200 and called.json()["content"] == [{"type": "text", "text": "ok"}]


def test_an_upstream_that_crashes_right_after_connecting_backs_off() -> None:
    app = hub_app({"flap": raw_server("flap")})
    with running(app):
        hub = hub_of(app)
        # Each crash doubles the delay (0.5, 1, 2 s) since the upstream was never ready for STABLE_SECONDS.
        eventually(lambda: "retrying in 2 s" in hub.status()["flap"]["detail"], what="a growing backoff")
        assert hub.status()["flap"]["attempts"] >= 3
