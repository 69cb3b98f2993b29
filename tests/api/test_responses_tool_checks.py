"""/v1/responses checks its whole tool list before any upstream call: a bad tool is a 400 naming it, never a 500
after the upstream answered (and was paid)."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.api import test_responses_support as support
from tests.api.test_responses_support import Fakes

fakes, gateway_url, client = support.fakes, support.gateway_url, support.client
WEATHER: Any = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("tools", "param"),
    [
        ([{"type": "namespace", "tools": [WEATHER]}], "tools[0].name"),
        ([WEATHER, {"type": "namespace", "name": 5, "tools": [WEATHER]}], "tools[1].name"),
        ([{"type": "namespace", "name": "", "tools": [WEATHER]}], "tools[0].name"),
        ([{"type": "namespace", "name": "weather", "tools": [{"type": "function"}]}], "tools[0].tools[0].name"),
        ([{"type": [1]}], "tools[0].type"),
        ([{"type": {"a": 1}, "name": "f"}], "tools[0].type"),
        ([5], "tools[0]"),
    ],
)  # fmt: skip
def test_a_bad_tool_is_a_400_naming_it_before_any_upstream_call(
    client: openai.OpenAI, fakes: Fakes, tools: Any, param: str, stream: bool
) -> None:
    calls = len(fakes.openai.requests)
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="text", input="hi", tools=tools, stream=stream)
    assert (caught.value.status_code, caught.value.param) == (400, param)
    assert param.removesuffix(".type") in caught.value.message
    assert len(fakes.openai.requests) == calls


@pytest.mark.parametrize("role", [[1], {"a": 1}, 5, None])
def test_a_role_that_is_no_string_is_a_400_naming_it(client: openai.OpenAI, fakes: Fakes, role: Any) -> None:
    calls = len(fakes.openai.requests)
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="text", input=[{"role": "user", "content": "hi"}, {"role": role, "content": "x"}])
    assert caught.value.param == "input[1].role"
    assert len(fakes.openai.requests) == calls
