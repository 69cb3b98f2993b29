"""Traces over real sockets, without the hooks in files tracing does not own: the openai SDK -> the gateway (wrapped
in `TracingMiddleware` as hub/app.py will wrap it) -> fake OpenAI upstreams, spans exported over OTLP/HTTP to an
in-process receiver that decodes them. Covers the server span, attempts with a retry, streams, `traceparent`
continued from the client and passed on to the upstream, sampling, and no content by default."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from hub.app import create_app
from hub.config import parse_config
from hub.ops.tracing.setup import Tracing
from tests.e2e.conftest import MASTER_KEY
from tests.fakes.faults import OPENAI_500, Faults
from tests.fakes.openai_upstream import API_KEY, FakeOpenAI
from tests.ops.otlp_receiver import OtlpReceiver
from tests.ops.tracing_support import PARENT_ID, TRACE_ID, Headers, Traced, receiver, tracing_to
from tests.support.servers import serve_app


class Setup:
    def __init__(self, client: openai.OpenAI, found: OtlpReceiver, tracing: Tracing | None, faults: Faults,
                 upstream: Headers) -> None:  # fmt: skip
        self.client = client
        self.found = found
        self.tracing = tracing
        self.faults = faults
        self.upstream = upstream

    def chat(self, headers: dict[str, str] | None = None, **params: Any) -> Any:
        return self.client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "Say hi"}], extra_headers=headers, **params
        )


@contextlib.contextmanager
def setup(traced: bool = True, **spec: Any) -> Iterator[Setup]:
    """The gateway with one deployment (router retries: 1) on a fake OpenAI upstream; once the block ends, every span
    has been exported to `Setup.found`."""
    fake = FakeOpenAI()
    faults = Faults(fake.app)
    upstream = Headers(faults)
    with receiver() as (found, otlp), serve_app(upstream) as up:
        model = {"model_name": "m", "litellm_params": {"model": "openai/text", "api_base": f"{up}/v1",
                                                       "api_key": API_KEY}}  # fmt: skip
        raw = {"model_list": [model], "general_settings": {"master_key": MASTER_KEY},
               "router_settings": {"num_retries": 1}}  # fmt: skip
        app = create_app(parse_config(raw, {}))
        tracing = tracing_to(otlp, **spec) if traced else None
        with (
            serve_app(app if tracing is None else Traced(app, tracing)) as url,
            openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=30) as client,
        ):
            yield Setup(client, found, tracing, faults, upstream)


def test_a_request_with_a_retry_is_one_server_span_with_an_attempt_span_each_continuing_the_callers_trace() -> None:
    with setup() as s:
        s.faults.queue = [OPENAI_500]
        completion = s.chat({"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
    found = s.found
    assert completion.choices[0].message.content
    [server] = found.named("POST")
    assert (server.name, server.kind, server.trace_id, server.parent_id) == (
        "POST /v1/chat/completions", "SERVER", TRACE_ID, PARENT_ID,
    )  # fmt: skip
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["http.route"] == "/v1/chat/completions"
    assert server.attributes["toolhub.request_id"]
    assert server.resource["service.name"] == "toolhub"
    failed, answered = found.children(server)
    assert (failed.name, failed.kind, failed.status) == ("chat text", "CLIENT", "ERROR")
    assert failed.attributes["http.response.status_code"] == 500
    assert (failed.attributes["toolhub.retry"], answered.attributes["toolhub.retry"]) == (0, 1)
    assert answered.status == "UNSET"
    assert answered.attributes["gen_ai.operation.name"] == "chat"
    assert answered.attributes["gen_ai.provider.name"] == "openai"
    assert answered.attributes["gen_ai.request.model"] == "text"
    assert answered.attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert answered.attributes["gen_ai.usage.input_tokens"] > 0
    assert answered.attributes["gen_ai.usage.output_tokens"] > 0
    assert answered.attributes["server.address"] == "127.0.0.1"
    assert not any(k.startswith(("gen_ai.input", "gen_ai.output")) for s in found.spans for k in s.attributes)
    # Each attempt went upstream with its own span as the parent.
    assert [h["traceparent"] for h in s.upstream.seen] == [
        f"00-{TRACE_ID}-{failed.span_id}-01",
        f"00-{TRACE_ID}-{answered.span_id}-01",
    ]


def test_a_streamed_attempt_span_lasts_to_the_end_of_the_stream_and_has_its_usage() -> None:
    with setup() as s:
        chunks = list(s.chat(stream=True, stream_options={"include_usage": True}))
    found = s.found
    assert chunks
    [server] = found.named("POST")
    [attempt] = found.children(server)
    assert server.parent_id == ""
    assert attempt.attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert attempt.attributes["gen_ai.usage.output_tokens"] > 0
    assert "toolhub.stream.closed_early" not in attempt.attributes
    [seen] = s.upstream.seen
    assert seen["traceparent"].startswith(f"00-{server.trace_id}-{attempt.span_id}-")  # flags: sampled (+ random)


def test_capture_content_puts_the_prompt_and_the_answer_on_the_attempt_span() -> None:
    with setup(capture_content=True) as s:
        completion = s.chat()
    found = s.found
    [attempt] = found.named("chat ")
    assert "Say hi" in attempt.attributes["gen_ai.input.messages"]
    assert completion.choices[0].message.content in attempt.attributes["gen_ai.output.messages"]


def test_an_unsampled_caller_gets_no_spans_but_its_trace_goes_on_upstream_unsampled() -> None:
    with setup() as s:
        s.chat({"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-00"})
    found = s.found
    assert found.spans == []
    [seen] = s.upstream.seen
    assert seen["traceparent"].startswith(f"00-{TRACE_ID}-") and seen["traceparent"].endswith("-00")


def test_a_sample_ratio_of_zero_exports_nothing() -> None:
    with setup(sample_ratio=0.0) as s:
        s.chat()
    found = s.found
    assert found.spans == []


def test_with_tracing_off_the_upstream_gets_no_trace_headers() -> None:
    with setup(traced=False) as s:
        s.chat({"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
    assert s.upstream.seen == [{}]


def test_an_upstream_error_answered_to_the_client_leaves_error_spans() -> None:
    with setup() as s:
        s.faults.always = OPENAI_500
        with pytest.raises(openai.InternalServerError):
            s.chat()
    found = s.found
    [server] = found.named("POST")
    assert server.attributes["http.response.status_code"] == 502
    assert server.status == "ERROR"
    assert [a.status for a in found.children(server)] == ["ERROR", "ERROR"]
