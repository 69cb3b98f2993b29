"""In-memory checks of the console's pieces: session cookies, schema-typed tool arguments, key forms."""

from __future__ import annotations

import pytest

from hub.accounts.auth import MASTER
from hub.ui.keys import key_fields
from hub.ui.mcp import arguments_from_form
from hub.ui.session import Sessions

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


def test_a_session_cookie_names_its_session_until_logout() -> None:
    sessions = Sessions(secret=b"s" * 32)
    session, cookie = sessions.create("sk-master", MASTER)
    assert sessions.get(cookie) is session
    assert "sk-master" not in cookie
    sessions.end(session)
    assert sessions.get(cookie) is None


def test_a_tampered_foreign_or_expired_cookie_is_no_session() -> None:
    sessions = Sessions(secret=b"s" * 32)
    session, cookie = sessions.create("sk-master", MASTER)
    sid, expiry, signature = cookie.split(".")
    assert sessions.get(f"{sid}.{int(expiry) + 3600}.{signature}") is None  # a longer life needs a new signature
    assert sessions.get(f"{sid}.{expiry}.{'0' * 64}") is None
    assert Sessions(secret=b"t" * 32).get(cookie) is None  # another process's secret
    assert sessions.get("garbage") is None and sessions.get(None) is None
    expired = Sessions(secret=b"s" * 32, ttl=-1)
    _, old = expired.create("sk-master", MASTER)
    assert expired.get(old) is None


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
