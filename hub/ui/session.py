"""Console sessions: a signed, expiring, HttpOnly SameSite=Strict cookie naming a session kept in this process.

The cookie is `<id>.<expiry>.<HMAC-SHA256>`; the key the operator typed stays on the server, so the browser never
holds it and logout really ends the session. State-changing requests must come from our own origin (`Origin`) and
carry the session's CSRF token (form field `csrf` or header `X-CSRF-Token`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field

from starlette.requests import HTTPConnection

from hub.accounts.auth import Principal

COOKIE = "toolhub_ui"
TTL_SECONDS = 8 * 3600


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in console user: the key it logged in with, who that is, and its CSRF token."""

    id: str
    key: str
    principal: Principal
    expires: float
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))


class Sessions:
    """The sessions of this process, and the secret that signs their cookies."""

    def __init__(self, secret: bytes | None = None, ttl: float = TTL_SECONDS) -> None:
        self._secret = secret or secrets.token_bytes(32)
        self._ttl = ttl
        self._live: dict[str, Session] = {}

    def create(self, key: str, principal: Principal) -> tuple[Session, str]:
        """A new session and its cookie value."""
        self._drop_expired()
        session = Session(secrets.token_urlsafe(24), key, principal, time.time() + self._ttl)
        self._live[session.id] = session
        payload = f"{session.id}.{int(session.expires)}"
        return session, f"{payload}.{self._sign(payload)}"

    def get(self, cookie: str | None) -> Session | None:
        """The live session a cookie names, if its signature is ours and neither it nor the session expired."""
        if not cookie or cookie.count(".") != 2:
            return None
        sid, expiry, signature = cookie.split(".")
        if not hmac.compare_digest(signature, self._sign(f"{sid}.{expiry}")):
            return None
        session = self._live.get(sid)
        if session is None or not expiry.isdigit() or int(expiry) < time.time() or session.expires < time.time():
            return None
        return session

    def end(self, session: Session) -> None:
        self._live.pop(session.id, None)

    def _sign(self, payload: str) -> str:
        return hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()

    def _drop_expired(self) -> None:
        now = time.time()
        for sid in [s.id for s in self._live.values() if s.expires < now]:
            del self._live[sid]


def same_origin(conn: HTTPConnection) -> bool:
    """Whether a browser request says it comes from this very origin (browsers send `Origin` on every POST)."""
    origin = conn.headers.get("origin")
    host = conn.headers.get("host")
    return bool(origin and host) and origin in (f"http://{host}", f"https://{host}")


def csrf_ok(session: Session, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest((token or "").encode(), session.csrf.encode())
