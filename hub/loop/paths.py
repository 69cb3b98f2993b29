"""Errors about a round's chat body, renumbered to the body the loop was given.

A round's body is the request's messages with the hub rounds of earlier turns put back among them (`hub.loop.memory`)
and this turn's rounds after them, so a provider's error about `messages[5]` may mean the request's `messages[3]`, or a
message the client never sent. `Shifts.located` rewrites such an error before it leaves the loop: a message of the
request is named by its index there (hub/api/locations.py then names the client's own field for /v1/messages and
/v1/responses), one of the gateway's by what it is, with no `param`: no field of the request holds it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

CHAT_PATH = re.compile(r"messages\.?\[(\d+)\](?:\.content\.?\[(\d+)\])?((?:\.[A-Za-z_]+|\.?\[\d+\])*)")
"""A chat message's path as the gateway's checks and the providers' translations word it: `messages.[3].content.[1]`
in a `param`, also `messages[3].content[1]` in a message."""
ADDED = "a message the gateway added to the conversation (a hub tool's call or result)"
"""How an error names a chat message of the gateway's own: the tool loop's rounds, approved hub tools' results."""


class Located(Protocol):
    """An error naming a chat path (`hub.errors.HubError`, `providers.base.ProviderError`)."""

    message: str
    param: str | None


E = TypeVar("E", bound=Located)


@dataclass(frozen=True, slots=True)
class Shifts:
    """Where a round's messages sit in the request: which the gateway inserted, and how many came with it."""

    inserted: Sequence[range]
    """The restored hub rounds' index ranges in the round's messages, in order."""
    size: int
    """How many messages the loop started with (restored ones included): the loop's own come after them."""

    def index(self, k: int) -> int | None:
        """The request's index of the round's message `k`; None for one the gateway added."""
        if k >= self.size:
            return None
        before = 0
        for span in self.inserted:
            if k in span:
                return None
            if span.stop <= k:
                before += len(span)
        return k - before

    def located(self, error: E) -> E:
        """`error` (changed in place) with every chat path it names renumbered to the request's messages."""
        if error.param is not None:
            match = CHAT_PATH.match(error.param)
            gateways = match is not None and self.index(int(match[1])) is None
            error.param = None if gateways else CHAT_PATH.sub(self._renumbered, error.param)
        error.message = CHAT_PATH.sub(self._named, error.message)
        return error

    def _renumbered(self, match: re.Match[str]) -> str:
        k = self.index(int(match[1]))
        return match[0] if k is None else match[0].replace(f"[{match[1]}]", f"[{k}]", 1)

    def _named(self, match: re.Match[str]) -> str:
        return ADDED if self.index(int(match[1])) is None else self._renumbered(match)
