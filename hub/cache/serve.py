"""A cache hit as the client asked for it: the stored answer as JSON, or replayed as an SSE stream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from starlette.responses import Response, StreamingResponse

from hub.cache.replay import completion_chunks
from hub.errors import json_response
from hub.gateway import sse

JSON = dict[str, Any]


def hit_response(body: JSON, completion: JSON, headers: dict[str, str]) -> Response:
    """`completion` as a JSON answer, or (for `stream: true`) the chunks the SDK accumulates back into it."""
    if not body.get("stream"):
        return json_response(completion, headers=headers)
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    events = _events(completion, include_usage)
    return StreamingResponse(events, media_type="text/event-stream", headers={**sse.HEADERS, **headers})


def _events(completion: JSON, include_usage: bool) -> Iterator[bytes]:
    for chunk in completion_chunks(completion, include_usage=include_usage):
        yield sse.event(chunk)
    yield sse.DONE
