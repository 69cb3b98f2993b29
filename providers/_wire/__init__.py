"""A lean HTTP/1.1 client for the provider hot path: pooled keep-alive connections parsed by httptools.

Why not aiohttp, which this replaced (issue 17): with yarl, multidict, attrs, aiohappyeyeballs, frozenlist and
propcache it added about 7 MB to a worker's RSS on its first upstream call, and its pure-Python request and response
objects cost CPU on every call. What the providers need is small: POST (and one DELETE) with a Content-Length body,
answers framed by Content-Length, chunked or the connection's end, gzip or deflate bodies, TLS, keep-alive and three
timeouts. httptools (the C parser uvicorn already serves with) parses the answers. URLs a client names (images) are
still fetched with aiohttp (`providers.gemini.images`), whose resolver hook guards private addresses.
"""

from providers._wire.connection import Response
from providers._wire.errors import (
    STALE_WINDOW,
    BodyTooLarge,
    ConnectFailed,
    IncompleteResponse,
    MalformedResponse,
    ServerDisconnected,
    UpstreamIOError,
    UpstreamTimeout,
)
from providers._wire.headers import Headers
from providers._wire.pool import Pool

__all__ = [
    "STALE_WINDOW",
    "BodyTooLarge",
    "ConnectFailed",
    "Headers",
    "IncompleteResponse",
    "MalformedResponse",
    "Pool",
    "Response",
    "ServerDisconnected",
    "UpstreamIOError",
    "UpstreamTimeout",
]
