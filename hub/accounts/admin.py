"""What the admin endpoints (`/key/*`, `/spend/*`) share: query parameters checked into 400s naming the parameter,
and store failures answered as 503 instead of a 500."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from hub.errors import BadRequest, ServiceUnavailable
from hub.storage import StoreError

Endpoint = Callable[[Request], Awaitable[Response]]


def store_errors(endpoint: Endpoint) -> Endpoint:
    """Answer a database that fails (down, timing out) with 503 `database_unavailable`; conflicts and bad values are
    handled (or refused up front) by the endpoint itself."""

    @functools.wraps(endpoint)
    async def wrapped(request: Request) -> Response:
        try:
            return await endpoint(request)
        except StoreError as exc:
            raise ServiceUnavailable(f"The database is unavailable: {exc}", code="database_unavailable") from exc

    return wrapped


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within `low..high`, or a 400 naming it."""
    raw = request.query_params.get(name)
    try:
        value = default if raw is None else int(raw)
    except ValueError as exc:
        raise BadRequest(f"'{name}' must be an integer.", param=name, code="invalid_value") from exc
    if not low <= value <= high:
        raise BadRequest(f"'{name}' must be within {low}..{high}.", param=name, code="invalid_value")
    return value


def query_text(request: Request, name: str) -> str | None:
    """A text query parameter; NUL characters (which PostgreSQL refuses in text) are a 400."""
    value = request.query_params.get(name)
    if value is not None and "\x00" in value:
        raise BadRequest(f"'{name}' must not contain NUL characters.", param=name, code="invalid_value")
    return value


def no_nul(value: str) -> str:
    """A pydantic validator: PostgreSQL cannot store NUL characters in text."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value
