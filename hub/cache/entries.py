"""Whether bytes found in a shared store are an entry this cache wrote, before they are served or kept.

An entry is `<unix time stored>\n<answer JSON>`, and for a tool loop `\n<its hub rounds JSON>` after
(`hub.cache.service`). Redis may hold anything under a key: another program's value, an operator's `SET`, an entry
of an older format. Served as it is, such a value was a 500 (an unpacking error) or a 200 whose body was the raw
bytes. So what `RedisStore.fetch` reads is checked here once, when this process first sees it; what passes is kept
as the near copy and later hits read that copy without checking again (a hit costs no extra JSON pass). A
`LocalStore` holds only entries this process wrote, so nothing it holds is checked.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

_ROUNDS = ("ids", "messages", "shown", "own")


def readable(entry: bytes, field: str) -> bool:
    """Whether `entry` is a stored answer whose `field` (`choices`, or `data` for embeddings) a hit can serve: a
    completion has at least one choice, each an object whose `message`, `logprobs` and `tool_calls` are of the types
    the replay walks."""
    parts = entry.split(b"\n", 2)
    if len(parts) < 2:
        return False
    try:
        stored_at = float(parts[0])
        answer = orjson.loads(parts[1])
        rounds = orjson.loads(parts[2]) if len(parts) == 3 and parts[2] else None
    except ValueError:  # (orjson.JSONDecodeError is one)
        return False
    if not math.isfinite(stored_at) or (rounds is not None and not _rounds(rounds)):
        return False
    return servable(answer, field)


def servable(answer: Any, field: str) -> bool:
    """Whether the answer (parsed) is one a hit can serve (`readable`): checked before it is stored too, so that an odd
    upstream's 200 (`choices: []`) is not written only for every other process to refuse it on each read."""
    if not isinstance(answer, dict):
        return False
    items: Any = answer.get(field)  # pyright: ignore[reportUnknownMemberType]
    if field != "choices":
        return isinstance(items, list)
    return isinstance(items, list) and bool(items) and all(_choice(choice) for choice in items)  # pyright: ignore[reportUnknownVariableType]


def _choice(choice: Any) -> bool:
    """A choice the stream replay (`hub.cache.replay`) can walk: objects and lists where it expects them."""
    if not isinstance(choice, dict):
        return False
    message: Any = choice.get("message")  # pyright: ignore[reportUnknownMemberType]
    logprobs: Any = choice.get("logprobs")  # pyright: ignore[reportUnknownMemberType]
    if not isinstance(message, dict | None) or not isinstance(logprobs, dict | None):
        return False
    calls: Any = (message or {}).get("tool_calls")  # pyright: ignore[reportUnknownMemberType]
    return calls is None or (isinstance(calls, list) and all(isinstance(call, dict) for call in calls))  # pyright: ignore[reportUnknownVariableType]


def _rounds(rounds: Any) -> bool:
    """A tool loop's kept hub rounds, as `hub.cache.loops.restore_rounds` reads them."""
    if not isinstance(rounds, dict) or any(name not in rounds for name in _ROUNDS):
        return False
    return isinstance(rounds["ids"], list) and isinstance(rounds["messages"], list)
