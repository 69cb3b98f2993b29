"""A whole answer replayed as chunks, and chunks gathered back: the round trip is exact."""

from __future__ import annotations

from typing import Any

from hub.cache.replay import StreamGatherer, completion_chunks

USAGE = {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}
TEXT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop", "logprobs": None}
    ],
    "usage": USAGE,
}
CALLS = [
    {"id": "c1", "type": "function", "function": {"name": "a", "arguments": '{"x": 1}'}},
    {"id": "c2", "type": "function", "function": {"name": "b", "arguments": "{}"}},
]
TOOLS = {
    **TEXT,
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": None, "tool_calls": CALLS},
            "finish_reason": "tool_calls",
            "logprobs": None,
        }
    ],
}


def gathered(chunks: list[dict[str, Any]]) -> dict[str, Any] | None:
    gatherer = StreamGatherer()
    for chunk in chunks:
        gatherer.add(chunk)
    return gatherer.completion()


def test_a_text_answer_survives_replay_and_gathering() -> None:
    assert gathered(list(completion_chunks(TEXT, include_usage=True))) == TEXT


def test_tool_calls_survive_replay_and_gathering() -> None:
    assert gathered(list(completion_chunks(TOOLS, include_usage=True))) == TOOLS


def test_the_tool_loop_record_rides_on_the_finish_chunk_and_is_gathered_back() -> None:
    looped = {**TEXT, "toolhub": {"rounds": 2, "tool_calls": [{"tool": "db__list_tables"}]}}
    chunks = list(completion_chunks(looped, include_usage=False))
    assert [c.get("toolhub") for c in chunks] == [None] * (len(chunks) - 1) + [looped["toolhub"]]
    assert gathered(chunks) == {k: v for k, v in looped.items() if k != "usage"}


def test_the_usage_chunk_comes_only_when_asked() -> None:
    chunks = list(completion_chunks(TEXT, include_usage=False))
    assert all("usage" not in c for c in chunks)
    last = list(completion_chunks(TEXT, include_usage=True))[-1]
    assert last["choices"] == [] and last["usage"] == USAGE


def test_every_chunk_is_a_completion_chunk_with_the_original_id() -> None:
    for chunk in completion_chunks(TOOLS, include_usage=True):
        assert (chunk["object"], chunk["id"], chunk["model"]) == ("chat.completion.chunk", "chatcmpl-1", "m")


def test_a_stream_cut_before_its_finish_reason_gathers_nothing() -> None:
    chunks = list(completion_chunks(TEXT, include_usage=False))[:-1]
    assert gathered(chunks) is None
    assert gathered([]) is None


def test_tool_call_fragments_are_joined_by_index() -> None:
    head = {"id": "x", "created": 1, "model": "m"}
    deltas: list[dict[str, Any]] = [
        {"role": "assistant", "content": None},
        {"tool_calls": [{"index": 0, "id": "c1", "type": "function", "function": {"name": "a", "arguments": ""}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"x"'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]},
    ]
    chunks = [{**head, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
    chunks.append({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    answer = gathered(chunks)
    assert answer is not None
    assert answer["choices"][0]["message"]["tool_calls"] == [CALLS[0]]
    assert "usage" not in answer


def _token(text: str) -> dict[str, Any]:
    return {"token": text, "logprob": -0.5, "bytes": list(text.encode()), "top_logprobs": []}


def test_logprobs_ride_with_their_text_and_are_gathered_back() -> None:
    choice = {**TEXT["choices"][0], "logprobs": {"content": [_token("hel"), _token("lo")], "refusal": None}}
    with_logprobs = {**TEXT, "choices": [choice]}
    chunks = list(completion_chunks(with_logprobs, include_usage=True))
    carrying = [c["choices"][0] for c in chunks if c["choices"] and "logprobs" in c["choices"][0]]
    assert [(c["delta"], c["logprobs"]) for c in carrying] == [({"content": "hello"}, choice["logprobs"])]
    assert gathered(chunks) == with_logprobs


def test_refusal_logprobs_and_tokens_without_text_survive_the_round_trip() -> None:
    message = {"role": "assistant", "content": None, "refusal": "no"}
    logprobs = {"content": [_token("")], "refusal": [_token("no")]}
    refused = {**TEXT, "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": logprobs}]}
    assert gathered(list(completion_chunks(refused, include_usage=True))) == refused


def test_logprobs_streamed_token_by_token_are_joined_in_order() -> None:
    head = {"id": "x", "created": 1, "model": "m"}
    pieces = [("a", [_token("a")]), ("b", [_token("b")]), ("", None)]
    chunks = [
        {**head, "choices": [{"index": 0, "delta": {"content": t}, "logprobs": lp and {"content": lp, "refusal": None},
                              "finish_reason": None if t else "stop"}]}
        for t, lp in pieces
    ]  # fmt: skip
    answer = gathered(chunks)
    assert answer is not None
    assert answer["choices"][0]["logprobs"] == {"content": [_token("a"), _token("b")], "refusal": None}
    assert gathered(list(completion_chunks(TEXT, include_usage=True))) == TEXT  # none sent: logprobs stays None


def pieces(text: str, size: int) -> list[dict[str, Any]]:
    """`TEXT` streamed as `text` in pieces of `size` characters."""
    head = {"id": "chatcmpl-1", "created": 1, "model": "m"}
    deltas = [{"content": text[i : i + size]} for i in range(0, len(text), size)]
    chunks = [{**head, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
    return [*chunks, {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}]


def test_a_long_stream_is_gathered_whole_from_its_pieces() -> None:
    text = "".join(f"{i:08d}" for i in range(50_000))  # 400,000 characters in 40,000 chunks
    answer = gathered(pieces(text, 10))
    assert answer is not None and answer["choices"][0]["message"]["content"] == text


def test_a_stream_past_the_limit_is_not_kept_and_what_it_gathered_is_let_go() -> None:
    gatherer = StreamGatherer(limit=1_000)
    for chunk in pieces("x" * 5_000, 100):
        gatherer.add(chunk)
    assert (gatherer.completion(), gatherer.choices, gatherer.over) == (None, {}, True)
    calls = StreamGatherer(limit=1_000)
    call = {"index": 0, "id": "c1", "type": "function", "function": {"name": "a", "arguments": "y" * 2_000}}
    calls.add({"choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": "tool_calls"}]})
    assert calls.completion() is None  # arguments count too


def test_a_matched_stop_sequence_survives_replay_and_gathering() -> None:
    choice = {**TEXT["choices"][0], "stop_reason": "END"}  # vLLM's name, the Anthropic provider's too
    answer = {**TEXT, "choices": [choice]}
    chunks = list(completion_chunks(answer, include_usage=True))
    assert chunks[-2]["choices"][0]["stop_reason"] == "END"
    assert gathered(chunks) == answer


def test_the_role_delta_of_an_answer_without_content_says_null_as_openai_streams_it() -> None:
    refused = {**TEXT, "choices": [{"index": 0, "message": {"role": "assistant", "content": None, "refusal": "no"}}]}
    assert next(completion_chunks(refused, include_usage=False))["choices"][0]["delta"] == {
        "role": "assistant",
        "content": None,
    }
    assert next(completion_chunks(TEXT, include_usage=False))["choices"][0]["delta"] == {
        "role": "assistant",
        "content": "",
    }
