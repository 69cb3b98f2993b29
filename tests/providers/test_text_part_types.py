"""Anthropic and Gemini translations refuse a text part whose `text` is no string, naming it, instead of dropping it
as empty (QA chat finding 4; the gateway refuses it first, these cover callers of the translations themselves)."""

from __future__ import annotations

from typing import Any

import pytest

from providers.anthropic.request import build_request as anthropic_request
from providers.base import Deployment, ProviderError
from providers.gemini.request import build_request as gemini_request
from providers.gemini.signatures import SignatureStore

HI: dict[str, Any] = {"role": "user", "content": "hi"}
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}


def translate(provider: str, messages: list[Any]) -> None:
    body = {"model": "alias", "messages": messages}
    if provider == "anthropic":
        anthropic_request(body, Deployment(provider="anthropic", model="claude-sonnet-4-5", api_base="http://x"),
                          lambda ids: None)  # fmt: skip
    else:
        deployment = Deployment(provider="gemini", model="gemini-2.5-flash", api_base="http://x", api_key="k")
        gemini_request(body, deployment, lookup=SignatureStore().lookup, images={})


@pytest.mark.parametrize("provider", ["anthropic", "gemini"])
@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([{"role": "user", "content": [{"type": "text", "text": 5}]}], "messages.[0].content.[0].text"),
        ([{"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": None}]}],
         "messages.[0].content.[1].text"),
        ([{"role": "user", "content": [{"type": "text"}]}], "messages.[0].content.[0].text"),
        ([{"role": "system", "content": [{"type": "text", "text": 5}]}, HI], "messages.[0].content.[0].text"),
        ([HI, {"role": "assistant", "content": [{"type": "text", "text": ["x"]}]}, HI],
         "messages.[1].content.[0].text"),
        ([HI, {"role": "assistant", "content": [{"type": "refusal", "refusal": 5}]}, HI],
         "messages.[1].content.[0].refusal"),
        ([HI, {"role": "assistant", "content": None, "tool_calls": [CALL]},
          {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": {"a": 1}}]}],
         "messages.[2].content.[0].text"),
    ],
)  # fmt: skip
def test_a_text_part_that_is_no_string_is_a_400_naming_it(provider: str, messages: list[Any], param: str) -> None:
    with pytest.raises(ProviderError) as exc_info:
        translate(provider, messages)
    error = exc_info.value
    assert (error.status_code, error.type, error.code, error.param) == (400, "invalid_request_error", "invalid_type",
                                                                        param)  # fmt: skip
    assert str(error) == f"{param} must be a string."
