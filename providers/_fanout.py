"""Limited fan-out for one request's upstream calls: Gemini's embedding batches and its image URL fetches."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import anyio

T = TypeVar("T")
R = TypeVar("R")


async def gather_limited(
    work: Callable[[T], Awaitable[R]], items: Sequence[T], *, limit: int, stop_on: type[Exception]
) -> list[R]:
    """`[await work(item) for item in items]`, at most `limit` calls at a time, in any order.

    One failed call fails the whole request, so the first `stop_on` error cancels the calls still running or
    waiting (no more bytes fetched, nor upstream calls paid, for an answer that is lost anyway) and is raised alone.
    Any other error is not caught here: the task group raises it in an ExceptionGroup.

    Raises:
        stop_on: the first one a call raised.
    """
    results: dict[int, R] = {}
    errors: list[Exception] = []
    limiter = anyio.CapacityLimiter(limit)

    async def one(position: int, item: T, group: anyio.abc.TaskGroup) -> None:
        async with limiter:
            try:
                results[position] = await work(item)
            except stop_on as exc:
                errors.append(exc)
                group.cancel_scope.cancel()

    async with anyio.create_task_group() as group:
        for position, item in enumerate(items):
            group.start_soon(one, position, item, group)
    if errors:
        raise errors[0]
    return [results[position] for position in range(len(items))]
