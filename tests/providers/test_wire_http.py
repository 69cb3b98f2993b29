"""What a provider call (`providers._http.post`) and the passthrough DELETE make of what the wire client cannot send
or will not follow: a 502 `ProviderError` in the gateway's own shape, never a 500."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest

from hub.api.responses import stored
from hub.api.responses.upstream import _delete_upstream, mark  # pyright: ignore[reportPrivateUsage]
from hub.storage import StoredResponse
from providers._http import HttpPool, post
from providers.base import Deployment, ProviderError
from tests.providers.wire_support import Upstream, answer, keep_answering, upstream

pytestmark = pytest.mark.anyio


def _unparsed(body: bytes) -> tuple[str, str | None, str | None, str | None]:
    return body.decode(), None, None, None


async def _post(api_base: str, headers: dict[str, str] | None = None, **deployment: Any) -> None:
    pool = HttpPool()
    target = Deployment(provider="openai", model="m", api_base=api_base, connect_timeout=2, timeout=2, **deployment)
    url = f"{api_base}/chat/completions"
    try:
        async with post(pool, target, url, b"{}", headers or {}, stream=False, parse_error=_unparsed):
            pass
    finally:
        await pool.aclose()


@pytest.mark.parametrize(
    "api_base",
    ["localhost:11434/v1", "http://127.0.0.1:99999/v1", "http://[::1/v1", "ftp://127.0.0.1/v1"],
)
async def test_an_api_base_that_is_no_http_url_is_a_502_not_asked_again(api_base: str) -> None:
    with pytest.raises(ProviderError) as raised:
        await _post(api_base, max_retries=3)
    error = raised.value
    assert (error.status_code, error.code, error.retryable) == (502, "upstream_unreachable", False)


async def test_credentials_in_the_api_base_and_an_authorization_header_together_are_a_502() -> None:
    with pytest.raises(ProviderError) as raised:
        await _post("http://user:hunter2@127.0.0.1:9/v1", {"Authorization": "Bearer sk-k"}, max_retries=3)
    error = raised.value
    assert (error.status_code, error.retryable, "hunter2" in error.message) == (502, False, False)


async def test_credentials_and_the_query_of_a_bad_api_base_are_not_in_the_error() -> None:
    with pytest.raises(ProviderError) as raised:
        await _post("http://user:hunter2@127.0.0.1:99999/v1?key=sk-secret")
    assert "hunter2" not in raised.value.message and "sk-secret" not in raised.value.message
    assert "127.0.0.1:99999/v1" in raised.value.message


async def _delete_upstream_logs(api_base: str, caplog: pytest.LogCaptureFixture) -> list[str]:
    """What the passthrough DELETE of a response `api_base` made logs."""
    deployment = Deployment(provider="openai", model="m", api_base=api_base, api_key="k")
    state = SimpleNamespace(config=SimpleNamespace(models={"a": [SimpleNamespace(deployment=deployment)]}),
                            pool=HttpPool())  # fmt: skip
    request: Any = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(hub=state)))
    row = StoredResponse("resp_up", None, 0.0, {stored.UPSTREAM: mark(deployment)}, [], [])
    try:
        with caplog.at_level(logging.WARNING, logger="toolhub.responses"):
            await _delete_upstream(request, row)
    finally:
        await state.pool.aclose()
    return [r.getMessage() for r in caplog.records]


async def test_the_upstream_delete_of_a_response_with_a_bad_api_base_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert await _delete_upstream_logs("localhost:11434/v1", caplog) == [
        "upstream DELETE of resp_up failed: not an http(s) URL: localhost:11434/v1/responses/resp_up"
    ]


async def test_an_upstream_delete_answered_with_a_redirect_is_logged_with_where_it_points(
    caplog: pytest.LogCaptureFixture,
) -> None:
    moved = answer(b"", "Location: https://api.example/v2/responses/resp_up", status="308 Permanent Redirect")
    async with upstream(keep_answering(moved)) as served:
        logs = await _delete_upstream_logs(f"{served.url}/v1", caplog)
    assert logs == ["upstream DELETE of resp_up answered 308 (Location: https://api.example/v2/responses/resp_up)"]


@pytest.mark.parametrize("status", ["301 Moved Permanently", "307 Temporary Redirect", "308 Permanent Redirect"])
async def test_a_redirect_is_a_502_naming_where_it_points_and_is_not_followed(status: str) -> None:
    record = Upstream("")
    moved = answer(b"", "Location: https://api.example/v2/chat/completions", status=status)
    async with upstream(keep_answering(moved, record=record)) as served:
        with pytest.raises(ProviderError) as raised:
            await _post(f"{served.url}/v1", max_retries=2)
    error = raised.value
    assert (error.status_code, error.code, error.upstream_status, len(record.requests)) == (
        502, "upstream_redirect", int(status[:3]), 1)  # fmt: skip
    assert "https://api.example/v2/chat/completions" in error.message
