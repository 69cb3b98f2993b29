"""Logging in with the master key or a virtual key, and out."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from hub.errors import HubError
from hub.state import hub_state
from hub.ui.session import COOKIE, TTL_SECONDS, Session, same_origin
from hub.ui.web import page, read_form, render, sessions


async def login_form(request: Request) -> Response:
    if sessions(request).get(request.cookies.get(COOKIE)) is not None:
        return RedirectResponse("/ui", status_code=303)
    return render(request, "login.html", open=hub_state(request).auth.open)


async def login(request: Request) -> Response:
    """Check the key exactly as the API does (`Authorization: Bearer`), then start a session."""
    if not same_origin(request):
        return render(request, "login.html", status=403, error="Cross-site login refused.")
    key = (await read_form(request)).get("key", "").strip()
    try:
        principal = await hub_state(request).auth.authenticate(key or None)
    except HubError as exc:
        return render(request, "login.html", status=exc.status_code, error=_why(exc))
    _, cookie = sessions(request).create(key, principal)
    response = RedirectResponse("/ui", status_code=303)
    secure = request.url.scheme == "https"
    response.set_cookie(COOKIE, cookie, max_age=TTL_SECONDS, path="/ui", httponly=True, samesite="strict",
                        secure=secure)  # fmt: skip
    return response


def _why(exc: HubError) -> str:
    if exc.status_code == 401:
        return "Wrong key: use the master key or a virtual key (sk-...)."
    return f"This key cannot log in: {exc.message}"


@page
async def logout(request: Request, session: Session) -> Response:
    sessions(request).end(session)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui", httponly=True, samesite="strict")
    return response
