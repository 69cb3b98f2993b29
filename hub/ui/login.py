"""Logging in with the master key or a virtual key, and out; failed logins are limited per client address."""

from __future__ import annotations

import ipaddress
import math
import time

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from hub.errors import HubError
from hub.state import hub_state
from hub.storage import StoreError
from hub.ui.session import COOKIE, TTL_SECONDS, Session, same_origin
from hub.ui.web import TOO_LARGE, FormTooLarge, page, read_form, render, sessions, throttle

NO_DATABASE = "The database is not answering, so no session can start or end: try again shortly."


async def login_form(request: Request) -> Response:
    try:
        if await sessions(request).get(request.cookies.get(COOKIE)) is not None:
            return RedirectResponse("/ui", status_code=303)
    except StoreError:
        return render(request, "login.html", status=503, error=NO_DATABASE, open=hub_state(request).auth.open)
    return render(request, "login.html", open=hub_state(request).auth.open)


async def login(request: Request) -> Response:
    """Check the key exactly as the API does (`Authorization: Bearer`), then start a session."""
    if not same_origin(request):
        return render(request, "login.html", status=403, error="Cross-site login refused.")
    address = counted_address(request.client.host if request.client else "")
    now = time.time()
    attempt = await throttle(request).attempt(address, now)  # counted before the key is read: guesses see each other
    if attempt.wait > 0:
        seconds = math.ceil(attempt.wait)
        error = f"Too many failed logins from your address: wait {seconds} s, then try again."
        response = render(request, "login.html", status=429, error=error)
        response.headers["retry-after"] = str(seconds)
        return response
    try:
        key = (await read_form(request)).get("key", "").strip()
    except FormTooLarge:
        return render(request, "login.html", status=413, error=TOO_LARGE)
    try:
        principal = await hub_state(request).auth.authenticate(key or None)
    except HubError as exc:
        return render(request, "login.html", status=exc.status_code, error=_why(exc))
    await throttle(request).succeeded(attempt)
    try:
        _, cookie = await sessions(request).create(key, principal)
    except StoreError:
        return render(request, "login.html", status=503, error=NO_DATABASE)
    response = RedirectResponse("/ui", status_code=303)
    secure = request.url.scheme == "https"
    response.set_cookie(COOKIE, cookie, max_age=TTL_SECONDS, path="/ui", httponly=True, samesite="strict",
                        secure=secure)  # fmt: skip
    return response


def counted_address(host: str) -> str:
    """What failed logins are counted under: an IPv4 address, or an IPv6 address's /64, which one site or machine
    usually holds whole (RFC 6177) and can rotate through, as it cannot through IPv4 addresses.

    `host` is the client uvicorn saw: behind a proxy trusted with `--forwarded-allow-ips`, the address that proxy
    put in X-Forwarded-For. The limit then holds only if the proxy appends the peer's address to the header rather
    than passing on the one its client sent; the direct peer is not counted too, as every user shares the proxy."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:  # no address (a test client, a Unix socket)
        return host
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else ip)


def _why(exc: HubError) -> str:
    """Why a key cannot log in, as the API says it; a key that does not exist is only "wrong" (an expired one exists,
    and whoever holds it learns no more than the API tells them)."""
    if exc.code == "key_expired":
        return f"{exc.message} Ask the gateway admin for a new key."
    if exc.status_code == 401:
        return "Wrong key: use the master key or a virtual key (sk-...)."
    return f"This key cannot log in: {exc.message}"


@page
async def logout(request: Request, session: Session) -> Response:
    """End the session everywhere (its row is deleted), then back to the login page."""
    try:
        await sessions(request).end(session)
    except StoreError:
        return render(request, "error.html", session, status=503, message=NO_DATABASE)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui", httponly=True, samesite="strict")
    return response
