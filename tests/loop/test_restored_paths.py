"""Where the round memory put hub rounds back (hub/loop/memory.py), and errors about a round's chat body renumbered to
the request's messages around them (hub/loop/paths.py)."""

from __future__ import annotations

from typing import Any

from hub.errors import BadRequest
from hub.loop.memory import RoundMemory, hub_rounds
from hub.loop.paths import ADDED, Shifts
from providers.base import ProviderError


def _call(call_id: str, name: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": "{}"}}


def _round(call_id: str) -> list[dict[str, Any]]:
    """A hub round: the assistant's call to the time tool and its result."""
    return [{"role": "assistant", "content": None, "tool_calls": [_call(call_id, "time__get_current_time")]},
            {"role": "tool", "tool_call_id": call_id, "content": "noon"}]  # fmt: skip


def test_restore_at_says_where_each_kept_round_went() -> None:
    memory = RoundMemory()
    memory.remember(["c1"], hub_rounds("k", _round("h1"), "shown", None))
    memory.remember(["c2"], hub_rounds("k", [*_round("h2"), *_round("h3")], "shown", None))
    chat: list[Any] = [{"role": "user", "content": "q"},
                       {"role": "assistant", "content": None, "tool_calls": [_call("c1", "show_chart")]},
                       {"role": "tool", "tool_call_id": "c1", "content": "shown"},
                       {"role": "assistant", "content": None, "tool_calls": [_call("c2", "show_chart")]},
                       {"role": "tool", "tool_call_id": "c2", "content": "shown"},
                       {"role": "user", "content": "and now?"}]  # fmt: skip
    messages, inserted = memory.restore_at(chat, "k")
    assert inserted == [range(1, 3), range(5, 9)]
    assert [m.get("tool_call_id") for m in messages if m["role"] == "tool"] == ["h1", "c1", "h2", "h3", "c2"]
    assert memory.restore(chat, "k") == messages
    assert memory.restore_at(chat, "someone else") == (chat, [])


def test_a_kept_round_the_conversation_already_holds_is_not_put_back_twice() -> None:
    memory = RoundMemory()
    memory.remember(["c1"], hub_rounds("k", _round("h1"), "shown", "own"))
    chart = {"role": "assistant", "content": "shown", "tool_calls": [_call("c1", "show_chart")]}
    echoed: list[Any] = [{"role": "user", "content": "q"}, *_round("h1"), chart]  # as /v1/messages sends it back
    assert memory.restore_at(echoed, "k") == (echoed, [])


SHIFTS = Shifts([range(1, 3), range(5, 9)], 12)
"""Request messages 0, 1, 2, 3, 4, 5 at round indexes 0, 3, 4, 9, 10, 11; the loop's own from 12."""


def test_a_round_index_maps_to_the_requests_or_to_none_for_the_gateways() -> None:
    assert [SHIFTS.index(k) for k in range(14)] == [0, None, None, 1, 2, None, None, None, None, 3, 4, 5, None, None]


def test_an_error_about_a_request_message_names_its_index_in_the_request() -> None:
    error = ProviderError("Invalid 'messages[10].content[1].image_url': bad; see messages[3].", status_code=400,
                          provider="openai", param="messages.[10].content.[1].image_url")  # fmt: skip
    assert SHIFTS.located(error) is error
    assert (error.param, error.message) == (
        "messages.[4].content.[1].image_url",
        "Invalid 'messages[4].content[1].image_url': bad; see messages[1].",
    )


def test_an_error_about_a_restored_or_loop_message_names_it_as_the_gateways() -> None:
    restored = BadRequest("messages[6].tool_calls[0] is malformed", param="messages.[6].tool_calls.[0]")
    later = BadRequest("Invalid 'messages[12].content': refused.", param="messages.[12].content")
    assert (SHIFTS.located(restored).param, restored.message) == (None, f"{ADDED} is malformed")
    assert (SHIFTS.located(later).param, later.message) == (None, f"Invalid '{ADDED}': refused.")


def test_an_error_naming_no_chat_message_is_left_as_it_is() -> None:
    error = BadRequest("'temperature' is too high (messages are fine).", param="temperature")
    assert (SHIFTS.located(error).param, error.message) == (
        "temperature",
        "'temperature' is too high (messages are fine).",
    )
