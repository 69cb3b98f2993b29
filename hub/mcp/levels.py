"""`logging/setLevel` per downstream session: the hub filters log messages for each session at the level it asked
for, and sets each upstream to the most verbose level any live session asked for (a shared upstream session has
one level for everyone). Sessions that never asked get what upstreams send. A session's level is forgotten when it
ends (`forget`), and the shared upstreams are set again to the most verbose level of the sessions left: one debug
session that closed otherwise left every upstream logging at `debug` until the next `logging/setLevel`. When no
session is left the upstreams keep their level (MCP has no way to unset it).

In the 2026-07-28 era there is no `logging/setLevel`: each request names its level in `_meta` and the SDK filters.
"""

from __future__ import annotations

import weakref
from collections.abc import Hashable
from typing import Any, get_args

import mcp_types as types

ORDER: tuple[types.LoggingLevel, ...] = get_args(types.LoggingLevel)
"""From the most verbose (`debug`) to the least (`emergency`)."""
RANK = {level: rank for rank, level in enumerate(ORDER)}


class LogLevels:
    """The level each live downstream session (connection) asked for."""

    def __init__(self) -> None:
        self._levels: weakref.WeakKeyDictionary[Any, types.LoggingLevel] = weakref.WeakKeyDictionary()

    def set(self, session: Hashable, level: types.LoggingLevel) -> bool:
        """Keep `session`'s level; whether it is the session's first (the caller then watches for its end)."""
        first = session not in self._levels
        self._levels[session] = level
        return first

    def forget(self, session: Hashable) -> None:
        """`session` ended (the weak reference alone would drop it only once it is collected)."""
        self._levels.pop(session, None)

    def get(self, session: Hashable) -> types.LoggingLevel | None:
        """The level `session` asked for; None if it never asked."""
        return self._levels.get(session)

    def allows(self, session: Hashable, level: str) -> bool:
        """Whether a message at `level` goes to `session` (unknown levels go: the client decides)."""
        wanted = self._levels.get(session)
        return wanted is None or RANK.get(level, len(ORDER)) >= RANK[wanted]  # pyright: ignore[reportArgumentType]

    def most_verbose(self) -> types.LoggingLevel | None:
        """The level upstreams are set to: the most verbose any live session asked for; None if none asked."""
        levels = list(self._levels.values())
        return min(levels, key=RANK.__getitem__) if levels else None
