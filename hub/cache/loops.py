"""What the response cache must know of a request beyond its body: whose tools a tool loop ran, and whether an
answer may be shared at all.

* A tool loop's answer depends on the key that asked: the loop runs only the hub tools that key may use, and tool
  results may differ per key. Its cache key therefore takes the loop's scope (`scope`): the owner (key id or alias,
  as `LoopPlan.owner`) and the hub tools offered. A hit, and an identical request waiting on one in flight, then only
  ever get an answer made for the same key with the same tools.
* An answer is stored, and handed to identical requests in flight, only when it is the alias's own complete answer
  (`shareable`): not one a fallback model group gave (the router's `answered_group` / `fallbacks`, which includes
  `mock_testing_fallbacks`), not a tool loop cut at `max_tool_rounds`, not one in which a hub tool call failed.
* A loop that ended with client tool calls kept its hub rounds in this process's `RoundMemory`, keyed by those
  calls' ids (`hub.loop.memory`); they are stored with the entry (`kept_rounds`) and put back into the memory of the
  process that serves a hit (`restore_rounds`), so the client's next turn finds them on any replica.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from hub.loop.memory import hub_rounds

if TYPE_CHECKING:
    from hub.accounts.usage import UsageRecord
    from hub.loop.plan import LoopPlan

JSON = dict[str, Any]
LOOP_RECORD = "toolhub"


def scope(plan: LoopPlan) -> bytes:
    """What besides the body a loop's answer depends on: its owner and the hub tools it may run."""
    return orjson.dumps([plan.owner, sorted(plan.hub_tools)])


def shareable(completion: JSON, record: UsageRecord | None) -> bool:
    """Whether `completion` may be stored or handed to identical requests: the alias's own, and a loop that ended
    with an answer and no failed tool call."""
    if record is not None and (record.fallbacks or record.answered_group):
        return False
    loop = completion.get(LOOP_RECORD)
    if not isinstance(loop, dict):
        return True
    if loop.get("stopped"):  # pyright: ignore[reportUnknownMemberType]
        return False
    calls: Any = loop.get("tool_calls") or ()  # pyright: ignore[reportUnknownMemberType]
    return not any(isinstance(call, dict) and call.get("is_error") for call in calls)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]


def kept_rounds(plan: LoopPlan | None, completion: JSON) -> bytes:
    """The hub rounds this process keeps for the client tool calls `completion` ends with, as JSON (b"": none)."""
    if plan is None or plan.memory is None:
        return b""
    message = (completion.get("choices") or [{}])[0].get("message") or {}
    ids = [call.get("id") or "" for call in message.get("tool_calls") or ()]
    if not ids:
        return b""
    restored = plan.memory.restore([message], plan.owner)  # the kept rounds, then the message as the model saw it
    if len(restored) < 2:
        return b""
    own = restored[-1].get("content")
    return orjson.dumps({"ids": ids, "messages": restored[:-1], "shown": message.get("content"), "own": own})


def restore_rounds(plan: LoopPlan | None, rounds: bytes) -> None:
    """Put hub rounds stored with an entry back into this process's memory, for the client's next turn."""
    if plan is None or plan.memory is None:
        return
    kept = orjson.loads(rounds)
    plan.memory.remember(kept["ids"], hub_rounds(plan.owner, kept["messages"], kept["shown"], kept["own"]))
