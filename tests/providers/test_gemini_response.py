"""Pure translation tests for Gemini responses and streams: finish reasons, tool calls, usage, thoughts, errors."""

from __future__ import annotations

import orjson
import pytest
from openai.types.chat import ChatCompletion

from providers.base import ProviderError
from providers.gemini.response import StreamTranslator, completion, parse_error, stream_error, usage
from providers.gemini.signatures import Step
from tests.providers._gemini_helpers import G3, gemini_chunk, reader, run_stream

# ---- responses --------------------------------------------------------------------------------------------------


def test_a_function_call_with_finish_reason_stop_becomes_tool_calls() -> None:
    data = {"candidates": [{"content": {"role": "model", "parts": [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2ln"}]},
        "finishReason": "STOP", "finishMessage": "Model generated function call(s).", "index": 0}],
        "usageMetadata": {"promptTokenCount": 107, "candidatesTokenCount": 23, "thoughtsTokenCount": 123,
                          "totalTokenCount": 253}, "responseId": "abc"}  # fmt: skip
    r = reader()
    out = completion(data, r, G3)
    ChatCompletion.model_validate(out)
    assert out["choices"] == [{"index": 0, "logprobs": None, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": None, "refusal": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]}}]  # fmt: skip
    assert out["usage"] == {"prompt_tokens": 107, "completion_tokens": 146, "total_tokens": 253,
                            "prompt_tokens_details": {"cached_tokens": 0},
                            "completion_tokens_details": {"reasoning_tokens": 123}}  # fmt: skip
    assert r.step() == Step(G3, {"call_1": "c2ln"}, {}, None)


@pytest.mark.parametrize(
    ("reason", "expected"),
    [("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"), ("RECITATION", "content_filter"),
     ("PROHIBITED_CONTENT", "content_filter"), ("BLOCKLIST", "content_filter"), ("SPII", "content_filter"),
     ("OTHER", "stop")],
)  # fmt: skip
def test_finish_reasons_map_to_openai(reason: str, expected: str) -> None:
    out, _ = run_stream([gemini_chunk([{"text": "partial"}], reason)])
    assert out[-2]["choices"][0]["finish_reason"] == expected


@pytest.mark.parametrize("reason", ["MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS"])
def test_failed_function_calls_are_errors_not_empty_successes(reason: str) -> None:
    data = {"candidates": [{"content": {"role": "model"}, "finishReason": reason, "finishMessage": "Malformed: x("}]}
    with pytest.raises(ProviderError) as exc_info:
        completion(data, reader(), G3)
    assert exc_info.value.status_code == 502
    assert exc_info.value.code == reason.lower()
    assert "Malformed: x(" in exc_info.value.message
    translator = StreamTranslator(reader(), G3)
    with pytest.raises(ProviderError):
        translator.feed(orjson.dumps(data))


def test_a_candidate_without_parts_is_an_empty_answer_not_a_crash() -> None:
    out = completion({"candidates": [{"content": {"role": "model"}, "finishReason": "STOP"}]}, reader(), G3)
    assert out["choices"][0]["message"]["content"] == ""
    assert out["choices"][0]["finish_reason"] == "stop"


def test_a_blocked_prompt_is_a_clear_400() -> None:
    data = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {"promptTokenCount": 3}}
    with pytest.raises(ProviderError) as exc_info:
        completion(data, reader(), G3)
    assert exc_info.value.status_code == 400
    assert exc_info.value.code == "content_policy_violation"
    assert "PROHIBITED_CONTENT" in exc_info.value.message


def test_thought_parts_become_reasoning_content() -> None:
    data = {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hmm.", "thought": True}, {"text": "42"}]},
                            "finishReason": "STOP"}]}  # fmt: skip
    message = completion(data, reader(), G3)["choices"][0]["message"]
    assert (message["content"], message["reasoning_content"]) == ("42", "Hmm.")
    out, _ = run_stream([gemini_chunk([{"text": "Hmm.", "thought": True}]), gemini_chunk([{"text": "42"}], "STOP")])
    assert [c["choices"][0]["delta"] for c in out[1:3]] == [{"reasoning_content": "Hmm."}, {"content": "42"}]


# ---- streams ----------------------------------------------------------------------------------------------------


def test_parallel_calls_stream_with_contiguous_indexes_and_ids_only_once_finish_only_at_the_end() -> None:
    out, r = run_stream([
        gemini_chunk([{"text": "Let me check."}]),
        gemini_chunk([{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "czE="},
                      {"functionCall": {"name": "get_time", "args": {}}}]),
        gemini_chunk([{"text": "", "thoughtSignature": "dHh0"}], "STOP",
                     {"promptTokenCount": 9, "candidatesTokenCount": 4, "totalTokenCount": 13}),
    ])  # fmt: skip
    deltas = [c["choices"][0]["delta"] for c in out if c["choices"]]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"content": "Let me check."},
        {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                         "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
        {"tool_calls": [{"index": 1, "id": "call_2", "type": "function",
                         "function": {"name": "get_time", "arguments": "{}"}}]},
        {},
    ]  # fmt: skip
    assert [c["choices"][0]["finish_reason"] for c in out if c["choices"]] == [None, None, None, None, "tool_calls"]
    assert all(c["choices"][0]["index"] == 0 for c in out if c["choices"])
    assert len({c["id"] for c in out}) == 1
    assert r.step() == Step(G3, {"call_1": "czE="}, {}, "dHh0")


def test_the_last_chunks_usage_wins_and_the_usage_chunk_has_no_choices() -> None:
    out, _ = run_stream([
        gemini_chunk([{"text": "a"}], None, {"promptTokenCount": 55, "candidatesTokenCount": 4, "totalTokenCount": 59}),
        gemini_chunk([{"text": ""}], "STOP", {"promptTokenCount": 257, "candidatesTokenCount": 8,
                                              "cachedContentTokenCount": 200, "thoughtsTokenCount": 5,
                                              "totalTokenCount": 270}),
    ])  # fmt: skip
    assert out[-1]["choices"] == []
    assert out[-1]["usage"] == {"prompt_tokens": 257, "completion_tokens": 13, "total_tokens": 270,
                                "prompt_tokens_details": {"cached_tokens": 200},
                                "completion_tokens_details": {"reasoning_tokens": 5}}  # fmt: skip
    assert all("usage" not in c for c in out[:-1])
    assert [c["choices"][0]["delta"] for c in out[1:-1]] == [{"content": "a"}, {}]  # no empty content delta


def test_a_stream_cut_before_the_finish_reason_is_an_error() -> None:
    translator = StreamTranslator(reader(), G3)
    translator.feed(gemini_chunk([{"text": "half"}]))
    with pytest.raises(ProviderError) as exc_info:
        translator.finish()
    assert exc_info.value.code == "upstream_incomplete"


@pytest.mark.parametrize(("payload", "status"), [
    (b'{"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}', 503),
    (b'[{"error": {"code": 429, "message": "Quota.", "status": "RESOURCE_EXHAUSTED"}}]', 429),
])  # fmt: skip
def test_an_error_object_in_the_stream_raises(payload: bytes, status: int) -> None:
    with pytest.raises(ProviderError) as exc_info:
        StreamTranslator(reader(), G3).feed(payload)
    assert exc_info.value.message.startswith("gemini error during the stream")
    assert exc_info.value.status_code == status


# ---- errors -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "type_"),
    [(400, "INVALID_ARGUMENT", "invalid_request_error"), (400, "FAILED_PRECONDITION", "invalid_request_error"),
     (403, "PERMISSION_DENIED", "permission_error"), (404, "NOT_FOUND", "invalid_request_error"),
     (429, "RESOURCE_EXHAUSTED", "rate_limit_error"), (500, "INTERNAL", None), (503, "UNAVAILABLE", None),
     (504, "DEADLINE_EXCEEDED", None)],
)  # fmt: skip
def test_gemini_error_bodies_parse_into_openai_fields(status: int, code: str, type_: str | None) -> None:
    body = {"error": {"code": status, "message": "msg", "status": code, "details": [
        {"@type": "type.googleapis.com/google.rpc.BadRequest",
         "fieldViolations": [{"field": "contents[0]"}]}]}}  # fmt: skip
    assert parse_error(orjson.dumps(body)) == ("msg", type_, code.lower(), "contents[0]")
    assert parse_error(orjson.dumps([body]))[0] == "msg"


def test_stream_error_status_follows_the_gateway_policy_with_overloaded_as_503() -> None:
    assert stream_error({"code": 429, "message": "q", "status": "RESOURCE_EXHAUSTED"}).status_code == 429
    assert stream_error({"code": 503, "message": "o", "status": "UNAVAILABLE"}).status_code == 503
    assert stream_error({"code": 500, "message": "i", "status": "INTERNAL"}).status_code == 502
    assert usage({})["total_tokens"] == 0


def test_a_signature_on_a_thought_part_is_not_moved_onto_visible_text() -> None:
    r = reader()
    r.read({"candidates": [{"content": {"parts": [{"text": "hmm", "thought": True, "thoughtSignature": "dGg="},
                                                  {"functionCall": {"name": "a", "args": {}}}]}}]})  # fmt: skip
    assert r.step().text is None


@pytest.mark.parametrize("metadata", [{"promptTokenCount": "many"}, {"candidatesTokenCount": [3]},
                                      {"thoughtsTokenCount": {"n": 1}}])  # fmt: skip
def test_usage_counts_that_are_no_numbers_are_a_502_not_a_crash(metadata: dict[str, object]) -> None:
    with pytest.raises(ProviderError) as refused:
        usage(metadata)
    assert (refused.value.status_code, refused.value.code) == (502, "upstream_bad_response")
