"""tests/support/shard.py: the shards of a suite are disjoint, whole files each, and together the whole suite."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.shard import FILE_WEIGHT, _dealt, shard_of  # pyright: ignore[reportPrivateUsage]


class _Item:
    def __init__(self, path: str) -> None:
        self.location = (path, 0, "test")


def test_every_file_is_in_exactly_one_shard_and_the_work_is_spread() -> None:
    items: list[Any] = [_Item(f"tests/f{i}.py") for i in range(7) for _ in range(i * 10)]
    shards = _dealt(items, 2)
    assert shards[0] | shards[1] == {f"tests/f{i}.py" for i in range(1, 7)} and not shards[0] & shards[1]
    loads = [sum(FILE_WEIGHT + int(path[7]) * 10 for path in shard) for shard in shards]
    assert abs(loads[0] - loads[1]) <= FILE_WEIGHT + 60


def test_a_shard_is_i_of_n_with_i_below_n() -> None:
    assert shard_of("1/2") == (1, 2)
    with pytest.raises(pytest.UsageError):
        shard_of("2/2")
