"""In-memory checks of the console's pieces: session cookies, schema-typed tool arguments, key forms."""

from __future__ import annotations

import base64

import pytest

from hub.accounts.auth import MASTER
from hub.ui.keys import key_fields
from hub.ui.mcp import arguments_from_form
from hub.ui.session import LoginThrottle, Sealer, Sessions, derive_secret

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
