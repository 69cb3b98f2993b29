"""A hit as the client asked for it: JSON bytes as stored, or a replayed stream rendered once per entry and mode."""

from __future__ import annotations

from typing import Any

import orjson

from hub.cache.replay import StreamGatherer
from hub.cache.serve import Replays, hit_response

ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop", "logprobs": None}
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}
HEADERS = {"x-toolhub-cache-hit": "true", "x-litellm-cache-key": "toolhub:k"}
STREAM: dict[str, Any] = {"stream": True}


def events(payload: bytes) -> list[Any]:
    lines = [line.removeprefix(b"data: ") for line in payload.split(b"\n\n") if line]
    assert lines[-1] == b"[DONE]"
    return [orjson.loads(line) for line in lines[:-1]]


def gathered(payload: bytes) -> dict[str, Any] | None:
    gatherer = StreamGatherer()
    for chunk in events(payload):
        gatherer.add(chunk)
    return gatherer.completion()


def test_a_plain_hit_is_the_stored_bytes_with_length_type_and_cache_headers() -> None:
    stored = orjson.dumps(ANSWER)
    response = hit_response({}, stored, HEADERS, Replays(10, 100_000), "toolhub:k")
    assert response.body == stored and response.status_code == 200
    assert dict(response.headers) == {**HEADERS, "content-length": str(len(stored)), "content-type": "application/json"}


def test_a_streamed_hit_is_a_whole_sse_stream_without_content_length() -> None:
    response = hit_response(STREAM, orjson.dumps(ANSWER), HEADERS, Replays(10, 100_000), "toolhub:k")
    assert "content-length" not in response.headers
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache" and response.headers["x-toolhub-cache-hit"] == "true"
    assert gathered(bytes(response.body)) == {k: v for k, v in ANSWER.items() if k != "usage"}


def test_a_replay_is_rendered_once_per_entry_and_usage_choice_and_again_when_the_entry_changes() -> None:
    replays = Replays(10, 100_000)
    stored = orjson.dumps(ANSWER)
    first = replays.events("toolhub:k", stored, include_usage=False)
    assert replays.events("toolhub:k", bytes(stored), include_usage=False) is first  # an equal entry: kept bytes
    with_usage = replays.events("toolhub:k", stored, include_usage=True)
    assert events(with_usage)[-1]["usage"] == ANSWER["usage"] and "usage" not in events(first)[-1]
    newer = {**ANSWER, "choices": [{**ANSWER["choices"][0], "message": {"role": "assistant", "content": "hello"}}]}
    again = replays.events("toolhub:k", orjson.dumps(newer), include_usage=False)
    assert gathered(again) == {k: v for k, v in newer.items() if k != "usage"}


def test_rendered_replays_stay_within_their_bound() -> None:
    replays = Replays(1_000, 4_000)
    for i in range(50):
        replays.events(f"toolhub:{i}", orjson.dumps({**ANSWER, "id": f"chatcmpl-{i}"}), include_usage=True)
        assert replays.bytes_used <= 4_000


def test_an_answer_from_an_identical_request_in_flight_is_served_in_both_modes() -> None:
    plain = hit_response({}, ANSWER, HEADERS, Replays(10, 100_000), "toolhub:k")
    assert orjson.loads(bytes(plain.body)) == ANSWER
    streamed = hit_response(STREAM, ANSWER, HEADERS, Replays(10, 100_000), "toolhub:k")
    assert gathered(bytes(streamed.body)) == {k: v for k, v in ANSWER.items() if k != "usage"}
