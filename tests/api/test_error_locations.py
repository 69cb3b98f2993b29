"""Errors about the translated chat body name the client's own fields (hub/api/locations.py), for the shapes the
/v1/messages and /v1/responses translations make: shifted by a system prompt, split into tool messages, merged."""

from __future__ import annotations

from typing import Any

from hub.api.locations import ADDED, Locations
from hub.api.messages.request import to_chat as messages_to_chat
from hub.api.responses.request import to_chat as responses_to_chat
from hub.errors import BadRequest
from providers.base import ProviderError

PNG = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}


def _messages(body: dict[str, Any]) -> tuple[list[Any], Locations]:
    where = Locations()
    chat = messages_to_chat({"model": "m", "max_tokens": 5, **body}, where=where)
    return chat["messages"], where


def test_a_messages_path_follows_the_system_prompt_tool_results_and_blocks() -> None:
    turns: Any = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": [{"type": "text", "text": "a"},
                                          {"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "r"},
                                     {"type": "text", "text": "and"}, PNG]},
    ]  # fmt: skip
    chat, where = _messages({"system": [{"type": "text", "text": "be brief"}], "messages": turns})
    assert [m["role"] for m in chat] == ["system", "user", "assistant", "tool", "user"]
    assert where.client("messages.[0].content.[0].text") == "system.0.text"
    assert where.client("messages.[1].content") == "messages.0.content"
    assert where.client("messages.[2].tool_calls.[0].function.arguments") == "messages.1"
    assert where.client("messages.[3].tool_call_id") == "messages.2.content.0.tool_use_id"
    assert where.client("messages.[4].content.[1].image_url.url: bad") == "messages.2.content.2.source: bad"
    assert where.client("messages[4].content[0] is empty") == "messages.2.content.1 is empty"
    assert where.client("messages.[9].role") == ADDED  # past the request's own: the tool loop's


def test_a_responses_path_follows_instructions_merged_calls_reasoning_and_outputs() -> None:
    items: Any = [
        {"role": "user", "content": [{"type": "input_text", "text": "q"},
                                     {"type": "input_file", "file_data": "JVBERi0=", "filename": "a.pdf"}]},
        {"type": "reasoning", "summary": []},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "r1"},
        {"type": "item_reference", "id": "msg_x"},
        {"type": "function_call_output", "call_id": "c2", "output": "r2"},
    ]  # fmt: skip
    history: Any = [{"role": "user", "content": "earlier"}, {"role": "assistant", "content": "yes"}]
    where = Locations()
    chat = responses_to_chat({"model": "m", "instructions": "be brief", "input": items}, history, where)
    assert [m["role"] for m in chat["messages"]] == ["system", "user", "assistant", "user", "assistant", "tool", "tool"]
    assert "_item" not in str(chat["messages"])
    assert where.client("messages.[0].content") == "instructions"
    assert where.client("messages.[1].content") == "messages.[1].content"  # the earlier conversation's
    assert where.client("messages.[3].content.[1].file.file_data") == "input[0].content[1].file_data"
    assert where.client("messages.[4].tool_calls.[1]") == "input[2]"
    assert where.client("messages.[5].role") == "input[4]" and where.client("messages.[6].content") == "input[6].output"


def test_an_error_is_mapped_in_place_and_a_truncated_conversation_keeps_its_origins() -> None:
    where = Locations()
    chat = responses_to_chat({"model": "m", "input": [{"role": "user", "content": "a"},
                                                       {"role": "assistant", "content": "b"},
                                                       {"role": "user", "content": "c"}]}, [], where)  # fmt: skip
    error = ProviderError("messages.[2].content: too long", status_code=400, provider="x", param="messages.[2]")
    assert where.mapped(error) is error and (error.message, error.param) == ("input[2].content: too long", "input[2]")
    where.follow(chat["messages"], chat["messages"][2:])
    mine = BadRequest("messages[0].content[0].text must be a string", param="messages.[0].content")
    where.mapped(mine)
    assert (mine.message, mine.param) == ("input[2].content must be a string", "input[2].content")
