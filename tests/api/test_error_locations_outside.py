"""Chat messages that no field of the request holds (hub/api/locations.py): a stored conversation's, named by
`previous_response_id`, and the gateway's own (approved hub tools' results, the tool loop's rounds), named with no
`param`; a truncated conversation keeps them."""

from __future__ import annotations

from typing import Any

from hub.api.locations import ADDED, Locations
from hub.api.responses.request import to_chat
from providers.base import ProviderError

HISTORY: Any = [{"role": "user", "content": "earlier"}, {"role": "assistant", "content": "yes"}]
RESULT: Any = {"role": "tool", "tool_call_id": "c1", "content": "noon"}


def _error(k: int) -> ProviderError:
    return ProviderError(f"messages.[{k}].content: refused", status_code=400, provider="x", param=f"messages.[{k}]")


def _located() -> tuple[list[Any], Locations]:
    """Instructions, two stored messages, one approved tool's result, then the input (chat messages 0 to 4)."""
    where = Locations()
    where.stored(range(1, 3), "resp_1")
    where.added(range(3, 4))
    chat = to_chat({"model": "m", "instructions": "be brief", "input": "now"}, [*HISTORY, RESULT], where)
    return chat["messages"], where


def test_each_chat_message_is_named_by_where_it_came_from() -> None:
    _, where = _located()
    named = [where.mapped(_error(k)) for k in range(6)]
    assert [(e.param, e.message) for e in named] == [
        ("instructions", "instructions: refused"),
        ("previous_response_id", "a message in the conversation stored as resp_1: refused"),
        ("previous_response_id", "a message in the conversation stored as resp_1: refused"),
        (None, f"{ADDED}: refused"),
        ("input", "input: refused"),
        (None, f"{ADDED}: refused"),  # after the request's own: a tool loop round's
    ]


def test_a_truncated_conversation_keeps_where_its_messages_came_from() -> None:
    messages, where = _located()
    where.follow(messages, [messages[0], *messages[2:]])
    named = [where.mapped(_error(k)) for k in range(5)]
    assert [e.param for e in named] == ["instructions", "previous_response_id", None, "input", None]
