"""pytest plugin (`-p tests.support.shard`): with `TOOLHUB_TEST_SHARD=i/n`, run only shard i of n.

Test files are dealt to the shard with the least work so far, the largest first. A file's work is its tests plus
`FILE_WEIGHT`: the files that run slowest start servers or processes for few tests each. Estimated from a
sequential run's durations (1,119 s), that weighing splits the suite about 540 and 580 s (test count alone: 490
and 630); run at once on 2 cores, the shards took 8 min 46 s and 11 min 28 s. A file
stays whole: its module fixtures start once. Without
the variable every test runs. `scripts/test` runs the shards at once with `TOOLHUB_TEST_SHARDS=n` (`.ci/run`: 2);
they share nothing a test may not share with a concurrent run: PostgreSQL tests make a schema each, files live
under their own `tmp_path`, servers take ports the kernel gives them.
"""

from __future__ import annotations

import os

import pytest

VARIABLE = "TOOLHUB_TEST_SHARD"
FILE_WEIGHT = 80
"""What a test file weighs beyond its tests, in tests."""


def shard_of(spec: str) -> tuple[int, int]:
    """(index, count) of `i/n`, 0 <= i < n."""
    index, count = (int(part) for part in spec.split("/"))
    if not 0 <= index < count:
        raise pytest.UsageError(f"{VARIABLE}={spec}: the shard must be i/n with 0 <= i < n")
    return index, count


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    spec = os.environ.get(VARIABLE)
    if not spec:
        return
    index, count = shard_of(spec)
    mine = _dealt(items, count)[index]
    kept = [item for item in items if item.location[0] in mine]
    config.hook.pytest_deselected(items=[item for item in items if item.location[0] not in mine])
    items[:] = kept


def _dealt(items: list[pytest.Item], count: int) -> list[set[str]]:
    """The test files of each shard: the heaviest file first, each to the shard with the least work so far."""
    sizes: dict[str, int] = {}
    for item in items:
        sizes[item.location[0]] = sizes.get(item.location[0], FILE_WEIGHT) + 1
    shards: list[set[str]] = [set() for _ in range(count)]
    loads = [0] * count
    for path, size in sorted(sizes.items(), key=lambda pair: (-pair[1], pair[0])):
        lightest = loads.index(min(loads))
        shards[lightest].add(path)
        loads[lightest] += size
    return shards
