"""What a URL comes to on the wire (`providers._wire`): the `Host` field, and credentials written in it."""

from __future__ import annotations

import base64

import pytest

from providers._wire import Pool
from providers._wire.pool import _head, shown_url  # pyright: ignore[reportPrivateUsage]
from tests.providers.wire_support import Upstream, answer, keep_answering, upstream


@pytest.mark.anyio
async def test_credentials_in_the_url_are_sent_as_basic_auth_and_not_in_host() -> None:
    record = Upstream("")
    async with upstream(keep_answering(answer(b"ok"), record=record)) as served:
        pool = Pool()
        try:
            response = await pool.request("POST", served.url.replace("://", "://us%20er:p%40ss@") + "/v1", {}, b"")
            await response.read()
        finally:
            await pool.aclose()
    [request] = record.requests
    expected = "Basic " + base64.b64encode(b"us er:p@ss").decode()
    assert (request.field("authorization"), request.field("host")) == (expected, served.url.split("//")[1])


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://api.example:443/v1", "api.example"),
        ("http://[::1]:80/v1", "[::1]"),
        ("http://api.example:443/v1", "api.example:443"),
        ("https://api.example:8443/v1", "api.example:8443"),
    ],
)
def test_a_default_port_written_in_the_url_is_left_out_of_host(url: str, host: str) -> None:
    head = _head("POST", Pool()._target(url), {}, b"")  # pyright: ignore[reportPrivateUsage]
    assert f"\r\nHost: {host}\r\n".encode() in head


@pytest.mark.anyio
async def test_credentials_in_the_url_and_an_authorization_header_together_are_refused() -> None:
    pool = Pool()
    with pytest.raises(ValueError):
        await pool.request("POST", "http://user:pw@127.0.0.1:9/v1", {"Authorization": "Bearer k"}, b"")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://u:p@host:8/v1?key=k", "http://host:8/v1"),
        ("http://u:p@ss@host/v1", "http://host/v1"),  # a password with an unescaped @ goes whole
        ("https://host/v1/models/m:generate", "https://host/v1/models/m:generate"),
        ("https://host/v1/a@b", "https://host/v1/a@b"),  # an @ in the path is not userinfo
    ],
)
def test_a_url_is_shown_without_credentials_or_query(url: str, shown: str) -> None:
    assert shown_url(url) == shown
