"""In-memory checks of the console's pieces: session cookies, schema-typed tool arguments, key forms."""

from __future__ import annotations

import base64
import logging

import pytest
from starlette.requests import Request

from hub.accounts.auth import MASTER
from hub.ui.formats import money, plain_number, visible
from hub.ui.keys import key_fields
from hub.ui.mcp import arguments_from_form, form_fields
from hub.ui.overview import health_lines
from hub.ui.session import LoginThrottle, Sealer, Sessions, derive_secret
from hub.ui.web import render

SCHEMA = {
    "type": "object",
    "properties": {
        "sql": {"type": "string"},
        "limit": {"type": "integer"},
        "ratio": {"type": "number"},
        "verbose": {"type": "boolean"},
        "params": {"type": "array"},
    },
    "required": ["sql"],
}


@pytest.mark.anyio
async def test_a_session_cookie_names_its_session_until_logout() -> None:
    sessions = Sessions(secret=b"s" * 32)
    session, cookie = await sessions.create("sk-master", MASTER)
    assert await sessions.get(cookie) is session
    assert "sk-master" not in cookie
    await sessions.end(session)
    assert await sessions.get(cookie) is None


@pytest.mark.anyio
async def test_a_tampered_foreign_or_expired_cookie_is_no_session() -> None:
    sessions = Sessions(secret=b"s" * 32)
    session, cookie = await sessions.create("sk-master", MASTER)
    sid, expiry, signature = cookie.split(".")
    assert await sessions.get(f"{sid}.{int(expiry) + 3600}.{signature}") is None  # a longer life needs a new signature
    assert await sessions.get(f"{sid}.{expiry}.{'0' * 64}") is None
    assert await Sessions(secret=b"t" * 32).get(cookie) is None  # another secret
    assert await sessions.get("garbage") is None and await sessions.get(None) is None
    expired = Sessions(secret=b"s" * 32, ttl=-1)
    _, old = await expired.create("sk-master", MASTER)
    assert await expired.get(old) is None


def test_a_sealed_key_opens_only_with_the_same_secret_and_unaltered() -> None:
    sealer = Sealer(derive_secret("sk-master"))
    sealed = sealer.seal("sk-virtual-key-é" * 5)
    assert "sk-virtual" not in sealed and sealer.seal("same") != sealer.seal("same")  # a fresh nonce each time
    assert sealer.open(sealed) == "sk-virtual-key-é" * 5
    assert Sealer(derive_secret("sk-other-master")).open(sealed) is None
    flipped = bytearray(base64.urlsafe_b64decode(sealed))
    flipped[20] ^= 1
    assert sealer.open(base64.urlsafe_b64encode(bytes(flipped)).decode()) is None
    assert sealer.open("!!not base64") is None and sealer.open("") is None
    assert derive_secret("sk-master") == derive_secret("sk-master") != derive_secret("sk-other-master")


def test_failed_logins_are_limited_per_address_in_a_sliding_window() -> None:
    throttle = LoginThrottle(limit=3, window=60)
    for t in (0, 1, 2):
        assert throttle.wait("10.0.0.1", t) == 0
        throttle.failed("10.0.0.1", t)
    assert throttle.wait("10.0.0.1", 3) == 57 and throttle.wait("10.0.0.2", 3) == 0
    assert throttle.wait("10.0.0.1", 60.5) == 0  # the first failure left the window
    throttle.succeeded("10.0.0.1", 0)
    assert throttle.wait("10.0.0.1", 3) == 0


def test_tool_arguments_are_typed_by_the_input_schema() -> None:
    form = {"name": "t", "arg:sql": "SELECT 1", "arg:limit": "5", "arg:ratio": "0.5", "arg:verbose": "true",
            "arg:params": "[1, \"a\"]"}  # fmt: skip
    assert arguments_from_form(form, SCHEMA) == {"sql": "SELECT 1", "limit": 5, "ratio": 0.5, "verbose": True,
                                                 "params": [1, "a"]}  # fmt: skip
    assert arguments_from_form({"arg:sql": "x"}, SCHEMA) == {"sql": "x"}


def test_a_value_that_does_not_fit_its_type_names_the_field() -> None:
    with pytest.raises(ValueError) as bad_int:
        arguments_from_form({"arg:limit": "many"}, SCHEMA)
    with pytest.raises(ValueError) as bad_json:
        arguments_from_form({"arg:params": "[1,"}, SCHEMA)
    assert (str(bad_int.value), str(bad_json.value)) == ("'limit' must be an integer.", "'params' must be JSON.")


def test_a_key_form_becomes_the_api_body_and_an_emptied_field_clears_on_update() -> None:
    form = {"key_alias": "a", "models": "x, y", "max_budget": "5", "has_rpm_limit": "1", "has_models": "1"}
    assert key_fields(form) == {"key_alias": "a", "max_budget": "5", "models": ["x", "y"]}
    assert key_fields(form, clearing=True) == {"key_alias": "a", "max_budget": "5", "rpm_limit": None,
                                               "models": ["x", "y"]}  # fmt: skip


def test_an_emptied_alias_clears_it_on_update_as_the_other_fields_do() -> None:
    assert key_fields({"has_key_alias": "1", "has_max_budget": "1"}, clearing=True) == {
        "key_alias": None, "max_budget": None}  # fmt: skip
    assert key_fields({"has_key_alias": "1"}) == {}  # creating a key leaves what was not filled in


def test_money_keeps_the_digits_a_small_amount_needs_and_cents_otherwise() -> None:
    amounts = [0, 2.6e-05, 2.6000000000000002e-05, 5.2e-05, 1e-06, 10.5, 3.0, 0.5, 7.5e-08 * 1e6, 1e-10 * 1e6,
               1.875, 1234.5678, 0.0123, 1e-13, 1e300, None, "n/a"]  # fmt: skip
    assert [money(a) for a in amounts] == [
        "$0.00", "$0.000026", "$0.000026", "$0.000052", "$0.000001", "$10.50", "$3.00", "$0.50", "$0.075",
        "$0.0001", "$1.875", "$1,234.57", "$0.0123", "<$0.000000000001", "$1e+300", "—", "n/a"]  # fmt: skip


def test_a_number_in_a_form_field_is_written_without_an_exponent() -> None:
    assert [plain_number(v) for v in (1e-06, 10.5, 3, None)] == ["0.000001", "10.5", "3", ""]


def test_direction_controls_in_a_name_are_written_out() -> None:
    assert visible("ünï \u202eRTL\u2066x\u2069") == "ünï [U+202E]RTL[U+2066]x[U+2069]"
    assert visible("plain") == "plain" and visible(None) == ""


def test_a_form_is_made_from_whatever_json_an_upstream_sent_as_its_schema() -> None:
    schema = {"properties": {"a": {"enum": 5}, "b": True, "c": {"type": ["integer", "null"], "description": {}},
                             "d": {"enum": [1, None, "z"], "default": 1}}, "required": 5}  # fmt: skip
    fields = form_fields(schema)
    assert [(f["name"], f["kind"], f["enum"], f["required"], f["description"]) for f in fields] == [
        ("a", None, None, False, None), ("b", None, None, False, None), ("c", None, None, False, None),
        ("d", None, ["1", "null", "z"], False, None)]  # fmt: skip
    assert form_fields({"properties": [1, 2]}) == form_fields("schema") == form_fields(None) == []
    assert arguments_from_form({"arg:a": "x", "arg:c": "3"}, schema) == {"a": "x", "c": 3}
    assert arguments_from_form({"arg:a": "x"}, {"properties": [1], "required": 5}) == {}
    assert arguments_from_form({}, {"properties": {"v": {"type": "boolean"}}, "required": 5}) == {}


def test_the_readiness_answer_reads_as_sentences() -> None:
    health = {"status": "degraded", "version": "1", "models": 2, "database": "connected",
              "mcp": {"a": "ready", "b": "failed"},
              "degraded": [{"component": "mcp_server", "name": "b", "state": "failed", "error": "exit 3"}]}  # fmt: skip
    assert health_lines(health) == [("Database", "connected"), ("MCP", "1 of 2 servers ready; not ready: b (failed)"),
                                    ("Degraded", "b: failed (exit 3)")]  # fmt: skip
    assert health_lines({"mcp": {}, "queue": {"depth": 3, "lag": [1, 2]}}) == [
        ("MCP", "no servers"), ("Queue", "depth: 3, lag: 1; 2")]  # fmt: skip
    assert health_lines("down") == []


def test_a_page_that_fails_to_render_answers_the_error_page_and_logs_why(caplog: pytest.LogCaptureFixture) -> None:
    request = Request({"type": "http", "method": "GET", "path": "/ui", "query_string": b"", "headers": []})
    with caplog.at_level(logging.ERROR, "toolhub.ui"):
        response = render(request, "_top.html", None, top_models=5, top_keys=[])  # 5 is not iterable
    assert response.status_code == 500 and b"This page could not be shown" in bytes(response.body)
    assert [r.getMessage() for r in caplog.records] == ["The console page _top.html failed to render"]
