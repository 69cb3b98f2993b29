"""Upstream URLs in error texts and log lines without their secrets: credentials (`user:password@`), query strings,
and path segments that look like tokens (hosted MCP servers put the key in the path: `/s/<base64>/mcp`, `/<uuid>/`).

URLs themselves are shown the gateway's way (`providers._wire.pool.shown_url`). An error text may quote the
configured URL in other forms (httpx2 normalizes it, a message may decode it), so `redact` removes the secret parts
of that URL in each form, and the credentials of any other URL. Imports no `mcp`: `hub.cli` installs `UrlFilter`
before `serve` keeps the SDK's server framework out (`hub.cli.keep_out_mcp_server_framework`).
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, unquote, urlsplit

from providers._wire.pool import shown_url

_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
# Up to the authority's last `@`, as `shown_url` does, so a password holding an unescaped `@` goes whole.
_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://)[^\s/?#'\"<>]*@")
MASK = "***"
SHORTEST_MASKED = 4
"""A bare password shorter than this is left where it stands alone: masking it everywhere would garble the text.
Written in the URL (after `?`, before `@`) it goes whatever its length."""
SHORTEST_MASKED_VALUE = 8
"""The same for a bare query value: most are no secret (`transport=http`, `format=json`, `v=2025`)."""
_TOKENISH = re.compile(r"(?=[^/]*[0-9])(?=[^/]*[A-Za-z])[A-Za-z0-9_.~=+%-]{16,}")
"""A path segment taken for a secret: 16 or more URL-safe characters, digits and letters among them (base64 and hex
keys, UUIDs). Names rarely are (`mcp`, `sse`, `server-everything`, `@modelcontextprotocol`); one that is, say a long
versioned name, is masked in logs too, which costs a reader little."""


def redact(text: str, url: str | None = None) -> str:
    """`text` without the credentials and query of `url` (as written, percent-decoded or as httpx2 writes it) and
    without the credentials of any URL in it."""
    for secret, replacement in _secrets(url) if url else []:
        text = secret.sub(replacement, text)
    return _USERINFO.sub(r"\1", text)


def hide_urls(text: str) -> str:
    """`text` with every URL in it shown without credentials, query or token-like path segments."""
    return _URL.sub(lambda match: _masked_path(shown_url(match[0])), text)


def _masked_path(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    if not (sep and slash):
        return url
    segments = (MASK if _TOKENISH.fullmatch(segment) else segment for segment in path.split("/"))
    return f"{scheme}://{host}/{'/'.join(segments)}"


class UrlFilter(logging.Filter):
    """Log records with the URLs in their message shown without credentials or query (httpx2's `HTTP Request:`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "://" in message:
            record.msg, record.args = hide_urls(message), None
        return True


def _secrets(url: str) -> list[tuple[re.Pattern[str], str]]:
    """(pattern, replacement) pairs, longest text first: `userinfo@` and `?query` go; alone, they are masked, as whole
    tokens only (`***-06-18` for a value `2025` would garble the text, not hide a secret)."""
    gone: set[str] = set()
    masked: set[str] = set()
    for form in _forms(url):
        userinfo, _, query = _parts(form)
        gone |= {f"{userinfo}@", f"?{query}"} - {"@", "?"}
        password = userinfo.partition(":")[2]
        masked |= {secret for secret in (userinfo, query, password) if len(secret) >= SHORTEST_MASKED}
        masked |= {value for _, value in parse_qsl(query) if len(value) >= SHORTEST_MASKED_VALUE}
        masked |= {segment for segment in _path(form).split("/") if _TOKENISH.fullmatch(segment)}
    pairs = [(secret, "") for secret in gone] + [(secret, MASK) for secret in masked]
    pairs.sort(key=lambda pair: (pair[1] != "", -len(pair[0])))
    return [(re.compile(_token(secret) if shown else re.escape(secret)), shown) for secret, shown in pairs]


def _token(secret: str) -> str:
    """`secret` standing alone: not inside a longer word, a hyphenated token or a URL scheme."""
    return rf"(?<![\w-]){re.escape(secret)}(?![\w-]|://)"


def _forms(url: str) -> set[str]:
    """`url` as configured, percent-decoded, and as httpx2 writes it in its messages."""
    import httpx2  # here: `hub.cli` imports this module before anything needs httpx2

    forms = {url, unquote(url)}
    try:
        forms.add(str(httpx2.URL(url)))
    except httpx2.InvalidURL:
        pass
    return forms


def _path(url: str) -> str:
    try:
        return urlsplit(url).path
    except ValueError:
        return ""


def _parts(url: str) -> tuple[str, str, str]:
    """(userinfo, host and port, query) of `url`; empty strings for what it lacks or cannot be split."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "", "", ""
    userinfo, _, host = parts.netloc.rpartition("@")
    return userinfo, host, parts.query
