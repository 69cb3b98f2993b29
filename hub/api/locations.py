"""Where a translated request's chat messages came from, so that errors about the chat body name the client's fields.

/v1/messages and /v1/responses translate their request to a Chat Completions body; the gateway's checks and the
providers' translations name what they refuse the chat way (`messages.[3].content.[1].image_url.url`, in texts also
`messages[3].content[1]`). The translation records each chat message's `Origin`, and `Locations.mapped` rewrites an
error's `param` and message with the client's own path (`messages.2.content.1`, `input[1].content[0].file_data`).
A chat message that is no part of this request has no path in it to name: an earlier conversation's (a
`previous_response_id`) is named by that field and the stored response, and one the gateway added (a hub tool's call
or result, e.g. a later round of the tool loop) by what it is, with no `param`: the request as a whole.
The tool loop has already renumbered an error about a round's body to the chat body made here (hub rounds of earlier
turns, put back among its messages, shift the later ones) and named the restored rounds as the gateway's
(`hub.loop.paths`).
The chat body's other fields are named the client's way too: a tool by the client's entry the translation made it of
(`tools[1].function.name` -> `tools[1].name`), a field the translation renamed by the client's name (`stop` ->
`stop_sequences`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hub.errors import HubError
from hub.loop.paths import ADDED, CHAT_PATH
from providers.base import ProviderError

_FIRST = re.compile(r"\.([A-Za-z_]+)")
_TOOL = re.compile(r"\btools\.?\[(\d+)\](?:\.function)?(?:\.([A-Za-z_]+))?")
"""A chat tool's path: `tools[1].function.name` in a message, `tools.[1]` in a `param` too."""


@dataclass
class Origin:
    """Where one chat message came from: the client's path for it, the client's name (with its separator) for the
    chat message's fields, and for content parts the client's path and the field holding the part's data.

    `said`: how a message names it when that is not its path (a stored conversation's); a `path` of None: no field
    of the request holds it, so an error's `param` names none."""

    path: str | None
    fields: dict[str, str] = field(default_factory=dict[str, str])
    parts: dict[int, tuple[str, str]] = field(default_factory=dict[int, tuple[str, str]])
    said: str | None = None


GATEWAYS = Origin(None, said=ADDED)


class Locations:
    """Chat message index -> `Origin`, for one translated request."""

    def __init__(
        self,
        words: Mapping[str, str] | None = None,
        names: Mapping[str, str] | None = None,
        tool_fields: Mapping[str, str] | None = None,
    ) -> None:
        self.origins: dict[int, Origin] = {}
        self.words = dict(words or {})
        """A provider's words for a chat field -> the client API's (`client`)."""
        self.tools: dict[int, str] = {}
        """Chat tool index -> the client's path for the entry it was made of (hub tools and hosted ones are left out
        or filtered, so the indexes differ)."""
        self.tool_fields = tool_fields or {}
        """A chat function's field -> the client's tool field, where it is named otherwise (`input_schema`)."""
        self._names = dict(names or {})
        longest = sorted(self._names, key=len, reverse=True)
        alternatives = "|".join(re.escape(n) for n in longest) or "(?!)"
        self._quoted = re.compile(rf"(?<=')({alternatives})(?=['.\[])")
        self._param = re.compile(rf"^({alternatives})(?=$|[.\[])")
        self.size: int | None = None
        """How many chat messages the request made: those after them are the tool loop's (`made`)."""

    def add(self, index: int, origin: Origin) -> None:
        self.origins[index] = origin

    def made(self, messages: list[Any]) -> None:
        """The translation made `messages`: any message after them in a request upstream is the gateway's."""
        self.size = len(messages)

    def stored(self, indexes: range, response_id: str) -> None:
        """The chat messages at `indexes` are the conversation stored as `response_id` (`previous_response_id`)."""
        said = f"a message in the conversation stored as {response_id}"
        for k in indexes:
            self.origins[k] = Origin("previous_response_id", said=said)

    def added(self, indexes: range) -> None:
        """The chat messages at `indexes` are the gateway's own (approved hub tools' calls and results)."""
        for k in indexes:
            self.origins[k] = GATEWAYS

    def follow(self, before: list[Any], after: list[Any]) -> None:
        """The upstream is given `after` (some of the messages of `before`, e.g. truncated): index by it."""
        positions = {id(message): i for i, message in enumerate(before)}
        moved = ((k, positions.get(id(message))) for k, message in enumerate(after))
        self.origins = {k: self.origins[i] for k, i in moved if i is not None and i in self.origins}
        self.size = len(after)

    def client(self, text: str) -> str:
        """`text` with each chat path the translation knows replaced by the client's, and a provider's words for a
        chat field by the client API's."""
        text = CHAT_PATH.sub(self._said, text) if "messages" in text else text
        text = _TOOL.sub(self._tool, text) if "tools" in text else text
        text = self._quoted.sub(self._renamed, text)
        for chat, client in self.words.items():
            text = text.replace(chat, client)
        return text

    def param(self, param: str) -> str | None:
        """The client's `param` for a chat one; None for a message that no field of the request holds."""
        match = CHAT_PATH.match(param)
        if match is not None and (origin := self._origin(int(match[1]))) is not None and origin.path is None:
            return None
        if "messages" in param:
            return CHAT_PATH.sub(self._path, param)
        return self._param.sub(self._renamed, _TOOL.sub(self._tool, param) if param.startswith("tools") else param)

    def mapped(self, error: HubError | ProviderError) -> HubError | ProviderError:
        """`error` with its `param` and message in the client's terms."""
        if error.param is not None:
            error.param = self.param(error.param)
        error.message = self.client(error.message)
        return error

    def body(self, data: Any) -> Any:
        """An error body in OpenAI's shape (a failed stream's last event) with its `param` and message in the client's
        terms; anything else as it is."""
        detail: Any = data.get("error") if isinstance(data, dict) else None  # pyright: ignore[reportUnknownMemberType]
        if isinstance(detail, dict):
            if isinstance(message := detail.get("message"), str):  # pyright: ignore[reportUnknownMemberType]
                detail["message"] = self.client(message)
            if isinstance(param := detail.get("param"), str):  # pyright: ignore[reportUnknownMemberType]
                detail["param"] = self.param(param)
        return data

    def _tool(self, match: re.Match[str]) -> str:
        path = self.tools.get(int(match[1]))
        if path is None:
            return match[0]
        return path + (f".{self.tool_fields.get(match[2], match[2])}" if match[2] else "")

    def _renamed(self, match: re.Match[str]) -> str:
        return self._names[match[1]]

    def _origin(self, index: int) -> Origin | None:
        if (origin := self.origins.get(index)) is not None:
            return origin
        return GATEWAYS if self.size is not None and index >= self.size else None

    def _said(self, match: re.Match[str]) -> str:
        origin = self._origin(int(match[1]))
        if origin is not None and origin.said is not None:
            return origin.said
        return self._path(match)

    def _path(self, match: re.Match[str]) -> str:
        origin = self._origin(int(match[1]))
        if origin is None or origin.path is None:
            return match[0]
        rest = match[3]
        if match[2] is not None:
            part = origin.parts.get(int(match[2]))
            if part is None:  # content the translation joined (an assistant's text): the message itself
                return origin.path + origin.fields.get("content", "")
            return part[0] + (part[1] if rest else "")
        first = _FIRST.match(rest)
        return origin.path + (origin.fields.get(first[1], "") if first else "")
