"""Script calls batched across requests: each gets its own answer, failures reach every request of the batch, and a
request cancelled while it waits does not stall the others."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from hub.accounts._batch import ScriptBatch

pytestmark = pytest.mark.anyio


class Script:
    """Answers each request's first ARGV doubled; holds its first call until `release` is set."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], list[Any]]] = []
        self.release = anyio.Event()
        self.fail = False

    async def __call__(self, keys: list[str], args: list[Any]) -> list[Any]:
        self.calls.append((keys, args))
        if len(self.calls) == 1:
            await self.release.wait()
        if self.fail:
            raise OSError("down")
        return [value * 2 for value in args[1:]]


async def test_requests_arriving_during_a_call_share_the_next_one() -> None:
    script = Script()
    batch = ScriptBatch(script, 1, lambda: ["head"], (OSError,))
    answers: dict[int, list[Any]] = {}

    async def ask(i: int) -> None:
        answers[i] = await batch.call([f"k{i}"], [i])

    async with anyio.create_task_group() as tg:
        for i in range(5):
            tg.start_soon(ask, i)
        await anyio.wait_all_tasks_blocked()
        script.release.set()
    assert answers == {i: [2 * i] for i in range(5)}
    assert [keys for keys, _ in script.calls] == [["k0"], ["k1", "k2", "k3", "k4"]]
    assert script.calls[1][1] == ["head", 1, 2, 3, 4]


async def test_a_failed_call_fails_its_whole_batch() -> None:
    script = Script()
    script.release.set()
    script.fail = True
    batch = ScriptBatch(script, 1, list, (OSError,))
    with pytest.raises(OSError):
        await batch.call(["k"], [1])


async def test_a_cancelled_waiter_leaves_the_queue_without_stalling_it() -> None:
    script = Script()
    batch = ScriptBatch(script, 1, lambda: ["head"], (OSError,))
    answers: list[Any] = []

    async def ask(i: int) -> None:
        answers.append(await batch.call([f"k{i}"], [i]))

    async with anyio.create_task_group() as tg:
        tg.start_soon(ask, 0)
        await anyio.wait_all_tasks_blocked()
        with anyio.CancelScope() as scope:
            scope.cancel()
            await batch.call(["gone"], [99])  # queued behind the call in flight, then cancelled
        tg.start_soon(ask, 1)
        await anyio.wait_all_tasks_blocked()
        script.release.set()
    assert sorted(answers) == [[0], [2]]
    assert [keys for keys, _ in script.calls] == [["k0"], ["k1"]]
