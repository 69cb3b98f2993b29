"""Upstream HTTP for providers: pooled keep-alive connections per upstream origin, SSE reading, error mapping.

The calls to upstreams go through `providers._wire`, a small HTTP/1.1 client over httptools: aiohttp (which this
path used, for costing about a quarter of httpx2's CPU per proxied request, docs/internals.md) added about 7 MB to
a worker's RSS on its first call and more CPU per request than the client it needs (issue 17). aiohttp is kept for
URLs a client names (images a provider fetches), imported there and only there, when a request first needs it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio
import orjson

from providers._wire import (
    STALE_WINDOW,
    BodyTooLarge,
    MalformedResponse,
    Pool,
    Response,
    ServerDisconnected,
    UpstreamIOError,
    UpstreamTimeout,
)
from providers.base import Deployment, ProviderError, bad_response

if TYPE_CHECKING:
    import ssl

    import aiohttp
    from aiohttp.abc import AbstractResolver

    from providers._resolver import PublicOnlyResolver


ErrorParser = Callable[[bytes], tuple[str, str | None, str | None, str | None]]
"""Turns an upstream error body into (message, type, code, param)."""

TRACE_HEADERS: ContextVar[Mapping[str, str] | None] = ContextVar("toolhub_trace_headers", default=None)
"""W3C trace context (`traceparent`, `tracestate`) for the upstream calls made in this context: set by the hub's
tracing (hub/ops/tracing) around each attempt; unset (one lookup per call) when tracing is off."""


class HttpPool:
    """The gateway's upstream connections: `upstream` (a `providers._wire.Pool`) for the calls providers make, and
    aiohttp sessions, made on first use, for URLs a client names (`session()`, `public_session()`). `aclose()` closes
    them all.

    `upstream` keeps a pool per origin (bounded by `limit_per_host`) and drops connections idle for
    `keepalive_timeout`. `ssl_context` replaces the default certificate checks of `upstream`, for tests.
    """

    def __init__(
        self,
        *,
        limit_per_host: int = 256,
        keepalive_timeout: float = 30.0,
        public_resolver: AbstractResolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.upstream = Pool(limit_per_host=limit_per_host, keepalive_timeout=keepalive_timeout,
                             ssl_context=ssl_context)  # fmt: skip
        self._limit_per_host = limit_per_host
        self._keepalive_timeout = keepalive_timeout
        self._public_resolver = public_resolver
        self._session: aiohttp.ClientSession | None = None
        self._public: aiohttp.ClientSession | None = None
        self._own_resolver: PublicOnlyResolver | None = None

    def session(self) -> aiohttp.ClientSession:
        """An aiohttp session for URLs a client names where private addresses are allowed (imports aiohttp)."""
        if self._session is None or self._session.closed:
            self._session = self._new_session(None)
        return self._session

    def public_session(self) -> aiohttp.ClientSession:
        """A session whose every connection goes to an address `is_public_address` accepted (`PublicOnlyResolver`).

        Names are resolved once, checked, and connected to as checked, so a DNS answer that changes between a check
        and the connection (rebinding) cannot reach the gateway's own network. IP literals skip resolvers in aiohttp:
        callers check those themselves.
        """
        if self._public is None or self._public.closed:
            if self._public_resolver is None and self._own_resolver is None:  # one for the pool's life (aclose ends it)
                from providers._resolver import PublicOnlyResolver

                self._own_resolver = PublicOnlyResolver()
            self._public = self._new_session(self._public_resolver or self._own_resolver)
        return self._public

    def _new_session(self, resolver: AbstractResolver | None) -> aiohttp.ClientSession:
        import aiohttp

        connector = aiohttp.TCPConnector(
            limit=0,
            limit_per_host=self._limit_per_host,
            ttl_dns_cache=300,
            keepalive_timeout=self._keepalive_timeout,
            resolver=resolver,
        )
        return aiohttp.ClientSession(connector=connector, auto_decompress=True, skip_auto_headers=("User-Agent",))

    async def aclose(self) -> None:
        await self.upstream.aclose()
        sessions = (self._session, self._public)
        self._session = self._public = None
        for session in sessions:
            if session is not None:
                await session.close()
        resolver, self._own_resolver = self._own_resolver, None
        if resolver is not None:  # an injected `public_resolver` is its owner's to close
            await resolver.close()


def gateway_status(upstream_status: int) -> int:
    """The status the gateway answers with for an upstream error status."""
    if upstream_status == 529:  # Anthropic "overloaded"
        return 503
    if 400 <= upstream_status < 500:
        return upstream_status
    return 502


def error_from_response(provider: str, status: int, body: bytes, parse: ErrorParser) -> ProviderError:
    """Build a `ProviderError` for an upstream error answer, keeping the upstream's own message."""
    try:
        message, type_, code, param = parse(body)
    except (ValueError, TypeError, KeyError, AttributeError):
        text = body.decode("utf-8", "replace").strip()[:500]
        message, type_, code, param = text or f"HTTP {status}", None, None, None
    retryable = status in (408, 409, 429) or status >= 500
    return ProviderError(
        f"{provider} error ({status}): {message}",
        status_code=gateway_status(status),
        provider=provider,
        type=type_ or ("upstream_error" if status >= 500 else "invalid_request_error"),
        code=code,
        param=param,
        upstream_status=status,
        retryable=retryable,
    )


def redirect_error(provider: str, status: int, location: str | None) -> ProviderError:
    """A 3xx answer: not followed, since a POST re-sent elsewhere may be billed twice or reach what the operator did
    not configure (aiohttp followed 307/308 with the POST and turned 301/302/303 into a GET); the fix is the
    deployment's `api_base`, so it is not retried there."""
    where = f" to {location[:300]}" if location else " without a Location"
    return ProviderError(
        f"{provider} answered {status}, a redirect{where}; the gateway does not follow redirects: set the "
        "deployment's api_base to where the upstream now answers",
        status_code=502,
        provider=provider,
        type="upstream_error",
        code="upstream_redirect",
        upstream_status=status,
    )


def connect_error(provider: str, url: str, exc: BaseException) -> ProviderError:
    detail = str(exc) or type(exc).__name__
    return ProviderError(
        f"{provider} is unreachable at {_origin(url)}: {detail}",
        status_code=502,
        provider=provider,
        type="upstream_error",
        code="upstream_unreachable",
        retryable=True,
    )


def unusable_url_error(provider: str, exc: ValueError) -> ProviderError:
    """The deployment's `api_base` (or a header of it) cannot make a request: asking again will not help, so it is not
    retryable, but another deployment may serve (the router fails over on a 502)."""
    return ProviderError(f"{provider} cannot be called: {exc}", status_code=502, provider=provider,
                         type="upstream_error", code="upstream_unreachable")  # fmt: skip


def timeout_error(provider: str, seconds: float, *, connecting: bool = False) -> ProviderError:
    """The 504 of a timeout; `connecting`: no connection (or no free one) within `seconds`, before the request could
    be sent."""
    return ProviderError(
        f"no connection to {provider} within {seconds:g} s"
        if connecting
        else f"{provider} did not answer within {seconds:g} s",
        status_code=504,
        provider=provider,
        type="timeout",
        code="upstream_timeout",
        retryable=True,
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"  # credentials in the URL are not for clients to read


@contextlib.asynccontextmanager
async def post(
    pool: HttpPool,
    deployment: Deployment,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    stream: bool,
    parse_error: ErrorParser,
) -> AsyncIterator[Response]:
    """POST to an upstream with retries on connection failures and retryable statuses; yield a 2xx response
    (redirects are errors, `redirect_error`).

    For a stream, `deployment.read_timeout(True)` bounds the wait between two reads; otherwise
    `deployment.timeout` bounds the whole call.
    Raises:
        ProviderError: the upstream answered an error, could not be reached, or timed out.
    """
    if stream:
        timeouts = {"connect": deployment.connect_timeout, "read": deployment.read_timeout(True)}
    else:
        timeouts = {"connect": deployment.connect_timeout, "total": deployment.timeout}
    if (trace := TRACE_HEADERS.get()) is not None:
        headers = {**headers, **trace}
    attempt, stale_retry, fresh = 0, True, False
    while True:
        sent = time.monotonic()
        try:
            response = await pool.upstream.request("POST", url, headers, body, fresh=fresh, **timeouts)
        except ValueError as exc:
            raise unusable_url_error(deployment.provider, exc) from exc
        except TimeoutError as exc:
            error: ProviderError = _timed_out(deployment, stream, exc)
        except UpstreamIOError as exc:
            if stale_retry and time.monotonic() - sent < STALE_WINDOW and _dropped_unanswered(exc):
                stale_retry, fresh = False, True  # not another pooled one: the upstream may have closed them all
                continue
            error = connect_error(deployment.provider, url, exc)
        else:
            if response.status < 300:
                try:
                    yield response
                except BaseException:  # the caller failed or was cancelled (its client went away): no waiting
                    response.close()
                    raise
                response.release()  # the rest of a stream after its last event, read to keep the connection
                return
            try:
                if response.status < 400:
                    error = redirect_error(deployment.provider, response.status, response.headers.get("location"))
                else:
                    error = error_from_response(deployment.provider, response.status, await response.read(),
                                                parse_error)  # fmt: skip
                    error.headers = _retry_headers(response.headers)
            except UpstreamIOError as exc:
                error = connect_error(deployment.provider, url, exc)
            finally:
                response.close()
        if not error.retryable or attempt >= deployment.max_retries:
            raise error
        attempt += 1
        await anyio.sleep(min(0.25 * 2 ** (attempt - 1), 4.0))


def _timed_out(deployment: Deployment, stream: bool, exc: TimeoutError) -> ProviderError:
    """The 504 naming the timeout that ran out: the connect timeout (no connection, or no pool slot, in time; or the
    whole call's timeout, when less was left of it) or the read or total one."""
    if isinstance(exc, UpstreamTimeout) and exc.phase == "connect":
        error = timeout_error(deployment.provider, round(exc.seconds, 3), connecting=True)
    else:
        error = timeout_error(deployment.provider, deployment.read_timeout(stream))
    error.__cause__ = exc
    return error


def _dropped_unanswered(exc: UpstreamIOError) -> bool:
    """Whether the upstream dropped the connection before answering: mostly a pooled connection whose idle keep-alive
    the server ended as the request went out (uvicorn-based servers such as vLLM's close after 5 s; the pool keeps
    connections longer). Retried once at once, outside `max_retries`, but only when the drop came within
    `STALE_WINDOW` of sending: a stale connection fails at once, while an upstream that worked on the request and then
    dropped it may have billed it (a POST is not idempotent, RFC 9112 section 9.3.1) and is not asked twice."""
    return isinstance(exc, ServerDisconnected)


def _retry_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() in ("retry-after", "retry-after-ms")}


async def read_json(provider: str, response: Response, timeout: float) -> Any:
    """Read and parse a JSON body. Raises ProviderError on a timeout, a broken connection or bad JSON."""
    try:
        raw = await response.read()
    except TimeoutError as exc:
        raise timeout_error(provider, timeout) from exc
    except BodyTooLarge as exc:  # not `upstream_unreachable`: asking again would bring the same answer
        raise bad_response(provider, f"{provider} sent an answer the gateway will not hold: {exc}") from exc
    except UpstreamIOError as exc:
        raise connect_error(provider, response.url, exc) from exc
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_response(
            provider, f"{provider} sent a body that is not JSON: {raw[:200].decode('utf-8', 'replace')}"
        ) from exc


async def iter_sse(provider: str, response: Response, timeout: float) -> AsyncIterator[tuple[str, bytes]]:
    """Yield `(event, data)` for each server-sent event; `event` is "" when the upstream names none.

    Raises:
        ProviderError: the answer is not an event stream, the stream stalled past `timeout` or the connection broke.
    """
    if "text/event-stream" not in response.headers.get("content-type", ""):
        body = await _start_of(provider, response, timeout)
        raise bad_response(
            provider,
            f"{provider} answered a stream request with {response.headers.get('content-type') or 'no content type'}"
            f" instead of an event stream: {body.decode('utf-8', 'replace')}",
        )
    event = ""
    data: list[bytes] = []
    try:
        async with contextlib.aclosing(_lines(provider, response)) as lines:
            async for raw_line in lines:
                line = raw_line.rstrip(b"\r\n")
                if not line:
                    if data:
                        yield event, b"\n".join(data)
                    event, data = "", []
                elif line.startswith(b"data:"):
                    data.append(line[6:] if line[5:6] == b" " else line[5:])
                elif line.startswith(b"event:"):
                    event = line[6:].strip().decode()
        if data:
            yield event, b"\n".join(data)
    except TimeoutError as exc:
        raise timeout_error(provider, timeout) from exc
    except MalformedResponse as exc:  # a broken chunked framing, or a body that does not inflate
        raise _bad_stream(provider, str(exc)) from exc
    except UpstreamIOError as exc:
        raise connect_error(provider, response.url, exc) from exc


async def _start_of(provider: str, response: Response, timeout: float) -> bytes:
    """Up to 500 bytes of a body, for an error message (what came first; the rest is not waited for)."""
    try:
        return (await response.read_chunk())[:500]
    except TimeoutError as exc:
        raise timeout_error(provider, timeout) from exc
    except UpstreamIOError as exc:
        raise connect_error(provider, response.url, exc) from exc


MAX_SSE_LINE = 32 * 1024 * 1024
"""The longest SSE line read: Gemini sends a whole answer chunk (a tool call with all its arguments) as one line."""


async def _lines(provider: str, response: Response) -> AsyncGenerator[bytes]:
    """The lines of a body, each with its newline, up to `MAX_SSE_LINE` bytes (Gemini's lines can be long; each
    network read is scanned once, from where the last scan stopped)."""
    buffer = bytearray()
    scanned = 0
    while block := await response.read_chunk():
        buffer += block
        start = 0
        while (end := buffer.find(b"\n", max(scanned, start))) != -1:
            yield bytes(buffer[start : end + 1])
            start = scanned = end + 1
        del buffer[:start]
        scanned = len(buffer)
        if scanned > MAX_SSE_LINE:
            raise _bad_stream(provider, f"an event line is longer than {MAX_SSE_LINE} bytes")
    if buffer:
        yield bytes(buffer)


def _bad_stream(provider: str, detail: str) -> ProviderError:
    return bad_response(provider, f"{provider} sent an event stream the gateway cannot read: {detail}")
