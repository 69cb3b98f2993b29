"""A cache hit as the client asked for it: the stored answer as JSON, or replayed as an SSE stream."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from hub.cache.replay import completion_chunks
from hub.errors import json_response
from hub.gateway import sse

JSON = dict[str, Any]


def hit_response(body: JSON, completion: JSON | bytes, headers: dict[str, str]) -> Response:
    """`completion` (stored JSON bytes, or the answer an identical in-flight request got) as a JSON answer, or for
    `stream: true` the SSE chunks the SDK accumulates back into it, sent at once: the answer is complete already."""
    if not body.get("stream"):
        if isinstance(completion, bytes):
            return Response(completion, media_type="application/json", headers=headers)
        return json_response(completion, headers=headers)
    answer = orjson.loads(completion) if isinstance(completion, bytes) else completion
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    events = [sse.event(chunk) for chunk in completion_chunks(answer, include_usage=include_usage)]
    payload = b"".join(events) + sse.DONE
    response = Response(payload, media_type="text/event-stream", headers={**sse.HEADERS, **headers})
    # Sent whole but without content-length, as a stream is: the inbound APIs of hub/api rewrite the bytes. (A
    # StreamingResponse costs ~0.2 ms more CPU per hit; a sync iterator runs in Starlette's thread pool.)
    del response.headers["content-length"]
    return response
