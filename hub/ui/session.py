"""Console sessions: a signed, expiring, HttpOnly SameSite=Strict cookie naming a session kept in the database.

The cookie is `<id>.<expiry>.<HMAC-SHA256>`, signed with a subkey of a secret derived from the master key (the sealing
keys are other subkeys of it, so no key serves two purposes), so every process and replica of the gateway reads the
same cookies. The session itself is a row of `toolhub_ui_sessions` (migration
0007_console.sql) under the SHA-256 of its id: logout deletes it, which ends it everywhere at once. The key the
operator typed is kept in that row sealed (encrypted and authenticated with keys derived from the same secret), so the
browser never holds it and a copy of the database alone does not reveal it. Without a database, sessions live in the
process, as before.

State-changing requests must come from our own origin (`Origin`) and carry the session's CSRF token (form field `csrf`
or header `X-CSRF-Token`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass, field, replace

from starlette.requests import HTTPConnection

from hub.accounts.auth import Principal
from hub.storage import Store, StoreError, login_attempts

COOKIE = "toolhub_ui"
TTL_SECONDS = 8 * 3600
LOGIN_FAILURES = 10
"""Failed logins one client address may make per `LOGIN_WINDOW` seconds; more get a 429 page."""
LOGIN_WINDOW = 60.0
_ADDRESSES = 10_000
_NONCE = 16
_TAG = 32

logger = logging.getLogger("toolhub.ui")


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in console user: the key it logged in with, who that is, and its CSRF token."""

    id: str
    key: str
    principal: Principal
    expires: float
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))


def derive_secret(master_key: str | None) -> bytes:
    """The cookie and sealing secret: the same in every process that has the same master key.

    Without a master key the gateway is open (anyone may use it) and the secret is a constant: a cookie is then only
    as good as the session row it names, which cannot be guessed.
    """
    return hmac.new((master_key or "").encode(), b"toolhub-ui-session-v1", hashlib.sha256).digest()


class Sealer:
    """Encrypt-then-MAC with HMAC-SHA256 only: a keystream of HMAC(nonce || counter) blocks, and a tag over the
    nonce and the ciphertext (the standard library has no cipher; this is a PRF in counter mode)."""

    def __init__(self, secret: bytes) -> None:
        self._enc = hmac.new(secret, b"seal-encrypt", hashlib.sha256).digest()
        self._mac = hmac.new(secret, b"seal-authenticate", hashlib.sha256).digest()

    def _stream(self, nonce: bytes, size: int) -> bytes:
        blocks = (
            hmac.new(self._enc, nonce + n.to_bytes(4, "big"), hashlib.sha256).digest() for n in range(size // 32 + 1)
        )
        return b"".join(blocks)[:size]

    def seal(self, text: str) -> str:
        nonce = secrets.token_bytes(_NONCE)
        plain = text.encode()
        cipher = bytes(a ^ b for a, b in zip(plain, self._stream(nonce, len(plain)), strict=True))
        tag = hmac.new(self._mac, nonce + cipher, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(nonce + cipher + tag).decode()

    def open(self, sealed: str) -> str | None:
        """The text, or None when the seal was not made with this secret (or was altered)."""
        try:
            raw = base64.urlsafe_b64decode(sealed.encode())
        except ValueError:
            return None
        nonce, cipher, tag = raw[:_NONCE], raw[_NONCE:-_TAG], raw[-_TAG:]
        if len(raw) < _NONCE + _TAG or not hmac.compare_digest(
            tag, hmac.new(self._mac, nonce + cipher, hashlib.sha256).digest()
        ):
            return None
        return bytes(a ^ b for a, b in zip(cipher, self._stream(nonce, len(cipher)), strict=True)).decode(
            errors="replace"
        )


_INSERT = "INSERT INTO toolhub_ui_sessions (id_hash, sealed, csrf, created_at, expires) VALUES ($1, $2, $3, $4, $5)"
_SELECT = "SELECT sealed, csrf, expires FROM toolhub_ui_sessions WHERE id_hash = $1"
_DELETE = "DELETE FROM toolhub_ui_sessions WHERE id_hash = $1"
_EXPIRED = "DELETE FROM toolhub_ui_sessions WHERE expires < $1"


class Sessions:
    """Console sessions: in `store` when there is one (shared by every process), otherwise in this process.

    Raises (every async method):
        StoreError: the database failed.
    """

    def __init__(self, secret: bytes | None = None, ttl: float = TTL_SECONDS, store: Store | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)
        self._sealer = Sealer(self._secret)
        self._signing = hmac.new(self._secret, b"cookie-sign", hashlib.sha256).digest()  # a subkey, like the sealer's
        self._ttl = ttl
        self._store = store
        self._live: dict[str, Session] = {}

    async def create(self, key: str, principal: Principal) -> tuple[Session, str]:
        """A new session and its cookie value."""
        now = time.time()
        session = Session(secrets.token_urlsafe(24), key, principal, now + self._ttl)
        if self._store is None:
            self._drop_expired(now)
            self._live[session.id] = session
        else:
            await self._execute(_EXPIRED, [now])
            await self._execute(
                _INSERT, [_hash(session.id), self._sealer.seal(key), session.csrf, now, session.expires]
            )
        payload = f"{session.id}.{int(session.expires)}"
        return session, f"{payload}.{self._sign(payload)}"

    async def get(self, cookie: str | None) -> Session | None:
        """The live session a cookie names, if its signature is ours and neither it nor the session expired. Its
        `principal` is a placeholder until the caller authenticates `key` again (`hub.ui.web`)."""
        sid = self._verified(cookie)
        if sid is None:
            return None
        if self._store is None:
            session = self._live.get(sid)
        else:
            session = await self._load(sid)
        return session if session is not None and session.expires >= time.time() else None

    async def end(self, session: Session) -> None:
        self._live.pop(session.id, None)
        if self._store is not None:
            await self._execute(_DELETE, [_hash(session.id)])

    def _verified(self, cookie: str | None) -> str | None:
        if not cookie or cookie.count(".") != 2:
            return None
        sid, expiry, signature = cookie.split(".")
        if not hmac.compare_digest(signature.encode(), self._sign(f"{sid}.{expiry}").encode()):
            return None
        return sid if expiry.isdigit() and int(expiry) >= time.time() else None

    async def _load(self, sid: str) -> Session | None:
        rows = await self._store.fetch(_SELECT, [_hash(sid)])  # pyright: ignore[reportOptionalMemberAccess]
        if not rows:
            return None
        key = self._sealer.open(rows[0]["sealed"])
        if key is None:  # sealed under another master key: the master key changed since
            return None
        placeholder = Principal(key_id=None, alias="", models=frozenset(), mcp_servers=frozenset())  # may nothing
        return replace(Session(sid, key, placeholder, float(rows[0]["expires"])), csrf=rows[0]["csrf"])

    async def _execute(self, text: str, args: list[object]) -> None:
        await self._store.execute(text, args)  # pyright: ignore[reportOptionalMemberAccess]

    def _sign(self, payload: str) -> str:
        return hmac.new(self._signing, payload.encode(), hashlib.sha256).hexdigest()

    def _drop_expired(self, now: float) -> None:
        for sid in [s.id for s in self._live.values() if s.expires < now]:
            del self._live[sid]


class LoginThrottle:
    """Login attempts per client address in a sliding window, in this process (`LoginAttempts` uses it without a
    database, and while the database fails).

    An attempt counts from the moment it starts (`attempt`), before the key is even read, so concurrent guesses cannot
    all pass the check first; a successful login takes back only its own attempt (`succeeded`).
    """

    def __init__(self, limit: int = LOGIN_FAILURES, window: float = LOGIN_WINDOW) -> None:
        self.limit, self.window = limit, window
        self._failures: dict[str, list[float]] = {}

    def wait(self, address: str, now: float) -> float:
        """Seconds until `address` may try again (0: now). Stores nothing for an address without recent attempts."""
        recent = [t for t in self._failures.get(address, ()) if t > now - self.window]
        if recent:
            self._failures[address] = recent
        else:
            self._failures.pop(address, None)
        return 0.0 if len(recent) < self.limit else recent[0] + self.window - now

    def attempt(self, address: str, now: float) -> float:
        """Count an attempt at `now` unless `address` must wait first: returns that wait (0: counted, go ahead)."""
        wait = self.wait(address, now)
        if wait == 0:
            self.failed(address, now)
        return wait

    def failed(self, address: str, now: float) -> None:
        if address not in self._failures and len(self._failures) >= _ADDRESSES:
            self._failures.pop(next(iter(self._failures)))  # the oldest address first: memory stays bounded
        self._failures.setdefault(address, []).append(now)

    def succeeded(self, address: str, when: float) -> None:
        """Take back the attempt counted at `when`; the address's other attempts still count."""
        attempts = self._failures.get(address, [])
        if when in attempts:
            attempts.remove(when)
        if not attempts:
            self._failures.pop(address, None)


@dataclass(frozen=True, slots=True)
class Attempt:
    """A login attempt: `wait` > 0 when it was refused (not counted) and the address must wait that many seconds;
    `id` names its row in the database, None when it was counted in this process."""

    address: str
    at: float
    wait: float
    id: str | None = None


class LoginAttempts:
    """Login attempts per client address (`LoginThrottle`'s rules): counted in `store` when there is one, so every
    process and replica on the database counts the same attempts (hub/storage/login_attempts.py).

    While the database fails, attempts count in this process (the limit holds per process, as without a database):
    nobody is locked out. The first failure is logged, and the first again after the database answered in between.

    An address the database refused is refused here until its wait ends without asking the database again
    (`_refused`): a flood of guesses from one address costs one write transaction per `limit` guesses a window, not
    one per guess. Only a success on another replica, which takes back one attempt, could have let it in sooner.
    """

    def __init__(self, store: Store | None = None, limit: int = LOGIN_FAILURES, window: float = LOGIN_WINDOW) -> None:
        self.local = LoginThrottle(limit, window)
        self._store = store
        self._failing = False
        self._refused: dict[str, float] = {}
        """Address -> until when the database refused it (bounded as `LoginThrottle` bounds its addresses)."""

    async def attempt(self, address: str, now: float) -> Attempt:
        """Count an attempt at `now` unless `address` must wait first (`Attempt.wait`)."""
        if (until := self._refused.get(address)) is not None:
            if until > now:
                return Attempt(address, now, until - now)
            del self._refused[address]
        if self._store is not None:
            attempt_id = secrets.token_urlsafe(12)
            try:
                wait = await login_attempts.count(
                    self._store, attempt_id, address, now, self.local.limit, self.local.window
                )
            except StoreError as exc:
                self._failed(exc)
            else:
                self._failing = False
                if wait > 0:
                    self._refuse(address, now + wait)
                return Attempt(address, now, wait, attempt_id)
        return Attempt(address, now, self.local.attempt(address, now))

    def _refuse(self, address: str, until: float) -> None:
        if len(self._refused) >= _ADDRESSES:
            self._refused.pop(next(iter(self._refused)))  # the oldest first: memory stays bounded
        self._refused[address] = until

    async def succeeded(self, attempt: Attempt) -> None:
        """Take back `attempt` (counted, and its key was right); the address's other attempts still count."""
        self._refused.pop(attempt.address, None)
        if attempt.id is None or self._store is None:
            self.local.succeeded(attempt.address, attempt.at)
            return
        try:
            await login_attempts.take_back(self._store, attempt.id)
        except StoreError as exc:  # the attempt stays counted until it leaves the window
            self._failed(exc)

    def _failed(self, exc: StoreError) -> None:
        if not self._failing:
            logger.warning("login attempts are counted per process until the database answers again: %s", exc)
        self._failing = True


def _hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def same_origin(conn: HTTPConnection) -> bool:
    """Whether a browser request says it comes from this very origin (browsers send `Origin` on every POST)."""
    origin = conn.headers.get("origin")
    host = conn.headers.get("host")
    return bool(origin and host) and origin in (f"http://{host}", f"https://{host}")


def csrf_ok(session: Session, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest((token or "").encode(), session.csrf.encode())
