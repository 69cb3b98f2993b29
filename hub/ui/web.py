"""What every console page shares: templates, the session guard with its CSRF checks, forms, static files."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from hub.errors import AuthenticationError, PayloadTooLarge, PermissionDenied
from hub.gateway.requests import read_body
from hub.mcp.lines import exact_dumps
from hub.state import hub_state
from hub.storage import StoreError
from hub.ui.formats import money, plain_number, visible
from hub.ui.session import COOKIE, LoginAttempts, Session, Sessions, csrf_ok, derive_secret, same_origin

NAV = [("Overview", "/ui"), ("Models", "/ui/models"), ("Keys", "/ui/keys"), ("Logs", "/ui/logs"),
       ("MCP", "/ui/mcp"), ("Playground", "/ui/playground")]  # fmt: skip
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}
LOGIN = "/ui/login"
_MAX_FORM = 256 * 1024
TOO_LARGE = f"The form is too large: the console takes at most {_MAX_FORM // 1024} KiB."
RENDER_FAILED = "This page could not be shown: the gateway's log says why."
logger = logging.getLogger("toolhub.ui")


class FormTooLarge(Exception):
    """A console form over `_MAX_FORM` bytes (answered 413, not read further)."""


@functools.cache
def templates() -> Any:
    """The console's templates, loaded on the first page served: a gateway that never serves /ui imports no jinja2."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("hub.ui", "templates"), autoescape=True, trim_blocks=True, lstrip_blocks=True
    )
    env.filters.update(json=shown_json, money=money, number=plain_number, visible=visible)
    return env


def shown_json(value: Any) -> str:
    """`value` as indented JSON, every integer exact (`exact_dumps`)."""
    return exact_dumps(value, indent=True).decode()


Page = Callable[[Request, Session], Awaitable[Response]]


def sessions(request: Request) -> Sessions:
    """The console's sessions (made on first use): in the database when there is one, signed with a secret derived
    from the master key."""
    state = hub_state(request)
    found = state.extras.get("ui_sessions")
    if found is None:
        store = state.extras.get("store")
        secret = derive_secret(state.config.master_key) if store is not None else None
        found = state.extras["ui_sessions"] = Sessions(secret, store=store)
    return found


def throttle(request: Request) -> LoginAttempts:
    """The console's login attempts (made on first use): counted in the database when there is one."""
    state = hub_state(request)
    found = state.extras.get("ui_login_throttle")
    if found is None:
        found = state.extras["ui_login_throttle"] = LoginAttempts(state.extras.get("store"))
    return found


def render(request: Request, name: str, session: Session | None = None, status: int = 200, **context: Any) -> Response:
    """The page `name`; one that fails to render (a value from an upstream no template foresaw) is logged and
    answered with the console's error page, never the API's JSON 500."""
    try:
        html = templates().get_template(name).render(request=request, session=session, nav=NAV, **context)
    except Exception:  # the console's top-level handler: anything a template raises
        logger.exception("The console page %s failed to render", name)
        failed = templates().get_template("error.html")
        html = failed.render(request=request, session=session, nav=NAV, message=RENDER_FAILED)
        status = 500
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def fragment(request: Request) -> bool:
    """Whether htmx asked for a part of the page (not a boosted whole-page navigation)."""
    return request.headers.get("hx-request") == "true" and request.headers.get("hx-boosted") != "true"


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form as {name: last value}; empty fields are left out.

    Raises:
        FormTooLarge: the body is over `_MAX_FORM` bytes.
    """
    body = await _bounded_body(request)
    parsed = parse_qs(body.decode(errors="replace"), keep_blank_values=False)
    return {name: values[-1] for name, values in parsed.items()}


async def _bounded_body(request: Request) -> bytes:
    """The body, read no further than `_MAX_FORM` bytes and kept where Starlette keeps it (`request.body()` answers
    it again, and `hub.ui.api.proxy` replays it).

    Raises:
        FormTooLarge: the body is larger.
    """
    try:
        body = await read_body(request, _MAX_FORM)
    except PayloadTooLarge:
        raise FormTooLarge from None
    if len(body) > _MAX_FORM:  # kept by an earlier reader with another limit
        raise FormTooLarge
    return body


def page(handler: Page) -> Callable[[Request], Awaitable[Response]]:
    """Run `handler` for a logged-in session; a state-changing request must also pass the Origin and CSRF checks."""

    @functools.wraps(handler)
    async def guarded(request: Request) -> Response:
        session = await _live_session(request)
        if session is None:
            if request.headers.get("hx-request") == "true":  # htmx loads the login page whole, not into a cell
                return Response(status_code=401, headers={**SECURITY_HEADERS, "hx-redirect": LOGIN})
            if request.method == "GET":
                return RedirectResponse(LOGIN, status_code=303)
            return render(request, "error.html", status=401, message="Your session ended: log in again.")
        try:
            if request.method != "GET" and not await _checked(request, session):
                return render(request, "error.html", session, status=403, message="Cross-site request refused.")
            return await handler(request, session)
        except FormTooLarge:
            return render(request, "error.html", session, status=413, message=TOO_LARGE)

    return guarded


async def _checked(request: Request, session: Session) -> bool:
    """Whether a state-changing request passes the Origin and CSRF checks (the token in a header or in the form).

    Raises:
        FormTooLarge: the form is too large to read its token.
    """
    form = await read_form(request) if _is_form(request) else {}
    tokens = (request.headers.get("x-csrf-token"), form.get("csrf"))
    return same_origin(request) and any(csrf_ok(session, token) for token in tokens)


async def _live_session(request: Request) -> Session | None:
    """The request's session while its key still authenticates, with what that key may do now: a key blocked,
    deleted or expired since the login ends the session at its next request (the key check is the API's own, cached
    like on /v1). A database failure reads as no session (the login page says why)."""
    store = sessions(request)
    try:
        session = await store.get(request.cookies.get(COOKIE))
    except StoreError:
        return None
    if session is None:
        return None
    try:
        principal = await hub_state(request).auth.authenticate(session.key or None)
    except (AuthenticationError, PermissionDenied):
        with contextlib.suppress(StoreError):
            await store.end(session)
        return None
    return dataclasses.replace(session, principal=principal)


def _is_form(request: Request) -> bool:
    return request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded")


def split_list(value: str | None) -> list[str] | None:
    """Split "a, b" into ["a", "b"]; nothing in it -> None."""
    items = [part.strip() for part in (value or "").replace("\n", ",").split(",") if part.strip()]
    return items or None
