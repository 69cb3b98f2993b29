"""A cache hit as the client asked for it: the stored answer as JSON, or replayed as an SSE stream.

A hit is the cheapest request the gateway serves, so this path is measured (bench/cache.py) and shaped by it:
- the response's raw headers are built here, once encoded, rather than by Starlette's `init_headers` from a dict
  (and, for a stream, a `content-length` deleted again through `MutableHeaders`: ~10 us of the ~37 us a replay took);
- a streamed hit renders the entry's chunks once per process: `Replays` keeps the SSE bytes of recent replays,
  checked against the entry found (byte-equal) so an entry stored again is rendered again.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from hub.cache.replay import completion_chunks
from hub.gateway import sse
from providers._cache import TTLCache

JSON = dict[str, Any]
Headers = list[tuple[bytes, bytes]]

_JSON_TYPE = (b"content-type", b"application/json")
_SSE_HEADERS: Headers = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    *((name.encode("latin-1"), value.encode("latin-1")) for name, value in sse.HEADERS.items()),
]
REPLAY_TTL = 3600.0
"""How long a rendered replay may be kept unused (it is only served while its entry is found, whatever this says)."""


class Replays:
    """The SSE bytes of recently replayed entries, by cache key and usage choice; bounded by entries and bytes."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self._rendered: TTLCache[tuple[bytes, bytes]] = TTLCache(max_entries, REPLAY_TTL, max_bytes=max_bytes)

    def events(self, key: str, completion: bytes, include_usage: bool) -> bytes:
        """The whole stream (`[DONE]` included) that replays the stored `completion` found under `key`."""
        name = key + ":usage" if include_usage else key
        kept = self._rendered.get(name)
        if kept is not None and kept[0] == completion:
            return kept[1]
        payload = render(orjson.loads(completion), include_usage)
        self._rendered.put(name, (completion, payload), size=len(name) + len(completion) + len(payload))
        return payload

    @property
    def bytes_used(self) -> int:
        return self._rendered.bytes_used


def render(completion: JSON, include_usage: bool) -> bytes:
    """The SSE stream the openai SDK accumulates back into `completion`."""
    events = [sse.event(chunk) for chunk in completion_chunks(completion, include_usage=include_usage)]
    return b"".join(events) + sse.DONE


class Prepared(Response):
    """A complete body with its raw headers given ready-encoded (status 200, no background task)."""

    def __init__(self, body: bytes, raw_headers: Headers) -> None:
        self.status_code = 200
        self.background = None
        self.body = body
        self.raw_headers = raw_headers


def hit_response(body: JSON, completion: JSON | bytes, headers: dict[str, str], replays: Replays, key: str) -> Response:
    """`completion` (stored JSON bytes, or the answer an identical in-flight request got) as a JSON answer, or for
    `stream: true` the SSE chunks the SDK accumulates back into it, sent at once: the answer is complete already."""
    raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
    if not body.get("stream"):
        payload = completion if isinstance(completion, bytes) else orjson.dumps(completion)
        return Prepared(payload, [*raw, (b"content-length", b"%d" % len(payload)), _JSON_TYPE])
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    if isinstance(completion, bytes):
        payload = replays.events(key, completion, include_usage)
    else:
        payload = render(completion, include_usage)
    # Sent whole but without content-length, as a stream is: the inbound APIs of hub/api rewrite the bytes. (A
    # StreamingResponse costs ~0.2 ms more CPU per hit; a sync iterator runs in Starlette's thread pool.)
    return Prepared(payload, [*raw, *_SSE_HEADERS])
