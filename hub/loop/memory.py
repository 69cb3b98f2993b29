"""Hub rounds kept on the gateway while the client answers its own tool calls.

When a loop ran hub tools and then ends with a call to a client tool, the client sees only its own call: its next
request carries that call and its result, not the hub rounds before it, so the model would lose what the hub tools
said. The loop keeps those rounds here, keyed by the client tool-call ids it returned, and puts them back in front of
that assistant message when the conversation comes back. Bounded like the providers' thinking signatures
(`providers/_cache.py`): at most `max_items` entries, `max_bytes` in all, each kept `ttl` seconds, oldest first out.
The memory is per process: behind several gateway processes a conversation that comes back to another process goes on
without the hub rounds, as before.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class HubRounds:
    """The hub rounds of one turn, before the assistant message that called client tools."""

    owner: str
    """The key (id or alias) whose conversation it is: restored only for that key."""
    messages: tuple[JSON, ...]
    """Assistant turns with hub tool calls, each followed by its tool results."""
    shown: str | None
    """The content the client got on the final message (every round's text)."""
    own: str | None
    """That message's own content (its round's text), which replaces `shown` when the rounds are restored."""
    size: int


class RoundMemory:
    """A bounded, expiring map from client tool-call id to the hub rounds before that call."""

    def __init__(
        self,
        max_items: int = 10_000,
        max_bytes: int = 64 * 1024 * 1024,
        ttl: float = 6 * 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._items: OrderedDict[str, tuple[float, HubRounds]] = OrderedDict()
        self._bytes = 0
        self.max_items, self.max_bytes, self.ttl = max_items, max_bytes, ttl
        self._clock = clock
        self.on_remember: Callable[[str, HubRounds], None] | None = None
        """Also keeps each entry elsewhere (`hub.shared`: in Redis, for the other replicas)."""

    def __len__(self) -> int:
        return len(self._items)

    @property
    def bytes(self) -> int:
        return self._bytes

    def remember(self, call_ids: Sequence[str], rounds: HubRounds) -> None:
        """Keep `rounds` under the first of `call_ids` (the ids of the client calls returned, in order)."""
        if not call_ids or not rounds.messages or rounds.size > self.max_bytes // 4:
            return  # one huge turn must not push out everyone else's
        self._drop(call_ids[0])
        self._items[call_ids[0]] = (self._clock() + self.ttl, rounds)
        self._bytes += rounds.size
        if self.on_remember is not None:
            self.on_remember(call_ids[0], rounds)
        while len(self._items) > self.max_items or self._bytes > self.max_bytes:
            self._drop(next(iter(self._items)))

    def restore(self, messages: Sequence[JSON], owner: str) -> list[JSON]:
        """`messages` with every kept hub round put back before the assistant message whose calls it preceded, unless
        `messages` hold its calls already."""
        return self.restore_at(messages, owner)[0]

    def restore_at(self, messages: Sequence[JSON], owner: str) -> tuple[list[JSON], list[range]]:
        """`restore`, and where the kept rounds went in its result: an error about one of the messages after them
        must name the client's index, not the shifted one (`hub.loop.paths`)."""
        out: list[JSON] = []
        inserted: list[range] = []
        sent: set[str] | None = None
        for message in messages:
            rounds = self._lookup(message, owner)
            if rounds is not None:
                sent = _call_ids(messages) if sent is None else sent
                if not sent & _call_ids(rounds.messages):  # else the client sent them back itself
                    inserted.append(range(len(out), len(out) + len(rounds.messages)))
                    out += rounds.messages
                    if message.get("content") == rounds.shown:
                        message = {**message, "content": rounds.own}
            out.append(message)
        return out, inserted

    def _lookup(self, message: Any, owner: str) -> HubRounds | None:
        if not isinstance(message, dict) or message.get("role") != "assistant":  # pyright: ignore[reportUnknownMemberType]
            return None
        calls: Any = message.get("tool_calls")  # pyright: ignore[reportUnknownMemberType]
        first = calls[0] if isinstance(calls, list) and calls else None
        call_id = first.get("id") if isinstance(first, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        item = self._items.get(call_id) if isinstance(call_id, str) else None
        if item is None or item[1].owner != owner:
            return None
        if item[0] < self._clock():
            self._drop(call_id)  # pyright: ignore[reportArgumentType]
            return None
        return item[1]

    def _drop(self, key: str) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self._bytes -= item[1].size


def _call_ids(messages: Sequence[Any]) -> set[str]:
    """The ids of the tool calls in `messages`: /v1/messages clients send the hub rounds back (as `mcp_tool_use` and
    `mcp_tool_result` blocks), and the model must not see them twice."""
    ids: set[str] = set()
    for message in messages:
        calls: Any = message.get("tool_calls") if isinstance(message, dict) else None  # pyright: ignore[reportUnknownMemberType]
        for call in calls if isinstance(calls, list) else ():  # pyright: ignore[reportUnknownVariableType]
            if isinstance(call, dict) and isinstance(call_id := call.get("id"), str):  # pyright: ignore[reportUnknownMemberType]
                ids.add(call_id)
    return ids


def hub_rounds(owner: str, messages: Sequence[JSON], shown: str | None, own: str | None) -> HubRounds:
    """A `HubRounds`, its size measured as JSON."""
    kept = tuple(messages)
    return HubRounds(owner, kept, shown, own, len(orjson.dumps(kept)) + len(shown or "") + len(own or ""))
