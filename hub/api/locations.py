"""Where a translated request's chat messages came from, so that errors about the chat body name the client's fields.

/v1/messages and /v1/responses translate their request to a Chat Completions body; the gateway's checks and the
providers' translations name what they refuse the chat way (`messages.[3].content.[1].image_url.url`, in texts also
`messages[3].content[1]`). The translation records each chat message's `Origin`, and `Locations.mapped` rewrites an
error's `param` and message with the client's own path (`messages.2.content.1`, `input[1].content[0].file_data`).
A chat message with no origin (an earlier conversation's, the tool loop's) keeps the chat path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from hub.errors import HubError
from providers.base import ProviderError

CHAT_PATH = re.compile(r"messages\.?\[(\d+)\](?:\.content\.?\[(\d+)\])?((?:\.[A-Za-z_]+|\.?\[\d+\])*)")
_FIRST = re.compile(r"\.([A-Za-z_]+)")


@dataclass
class Origin:
    """Where one chat message came from: the client's path for it, the client's name (with its separator) for the
    chat message's fields, and for content parts the client's path and the field holding the part's data."""

    path: str
    fields: dict[str, str] = field(default_factory=dict[str, str])
    parts: dict[int, tuple[str, str]] = field(default_factory=dict[int, tuple[str, str]])


class Locations:
    """Chat message index -> `Origin`, for one translated request."""

    def __init__(self) -> None:
        self.origins: dict[int, Origin] = {}

    def add(self, index: int, origin: Origin) -> None:
        self.origins[index] = origin

    def follow(self, before: list[Any], after: list[Any]) -> None:
        """The upstream is given `after` (some of the messages of `before`, e.g. truncated): index by it."""
        positions = {id(message): i for i, message in enumerate(before)}
        moved = ((k, positions.get(id(message))) for k, message in enumerate(after))
        self.origins = {k: self.origins[i] for k, i in moved if i is not None and i in self.origins}

    def client(self, text: str) -> str:
        """`text` with each chat path the translation knows replaced by the client's."""
        return CHAT_PATH.sub(self._replace, text) if "messages" in text else text

    def mapped(self, error: HubError | ProviderError) -> HubError | ProviderError:
        """`error` with its `param` and message in the client's terms."""
        if error.param is not None:
            error.param = self.client(error.param)
        error.message = self.client(error.message)
        return error

    def _replace(self, match: re.Match[str]) -> str:
        origin = self.origins.get(int(match[1]))
        if origin is None:
            return match[0]
        rest = match[3]
        if match[2] is not None:
            part = origin.parts.get(int(match[2]))
            if part is None:  # content the translation joined (an assistant's text): the message itself
                return origin.path + origin.fields.get("content", "")
            return part[0] + (part[1] if rest else "")
        first = _FIRST.match(rest)
        return origin.path + (origin.fields.get(first[1], "") if first else "")
