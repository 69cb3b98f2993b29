"""A passthrough upstream that took input items of odd types (a lenient OpenAI-compatible server): continuing its
response on another upstream sends the earlier items again, and an odd one is left out, not a 500."""

from __future__ import annotations

from typing import Any

import openai

from tests.api import test_responses_passthrough as passthrough
from tests.fakes.responses_upstream import FakeResponses

fake, gateway_url, client = passthrough.fake, passthrough.gateway_url, passthrough.client


def test_a_stored_item_whose_type_is_no_string_is_not_replayed(client: openai.OpenAI, fake: FakeResponses) -> None:
    odd: Any = [{"type": [1], "role": "user", "content": "x"}, {"type": {"a": 1}}, {"role": "user", "content": "Ada"}]
    first = client.responses.create(model="native", input=odd)
    second = client.responses.create(model="native-other", previous_response_id=first.id, input="my name?")
    sent = fake.requests[-1]
    assert "previous_response_id" not in sent and second.output_text == "You said: my name?"
    assert [item.get("role") for item in sent["input"]] == ["user", "assistant", "user"]
