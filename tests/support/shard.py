"""pytest plugin (`-p tests.support.shard`): with `TOOLHUB_TEST_SHARD=i/n`, run only shard i of n.

Test files are dealt to the shard with the least work so far, the longest first. A file's work is its recorded
seconds in `DURATIONS` (tests/support/durations.json); a file not listed there is guessed at `SECONDS_PER_TEST` times
its tests plus `FILE_WEIGHT`. That guess alone split CI's last run into 8 min 11 s (2,638 tests) and 11 min 24 s
(2,114): the slowest files start servers or processes for few tests each. A file stays whole: its module fixtures
start once. Without the variable every test runs. `scripts/test` runs the shards at once with
`TOOLHUB_TEST_SHARDS=n` (`.ci/run`: 2); they share nothing a test may not share with a concurrent run: PostgreSQL
tests make a schema each, files live under their own `tmp_path`, servers take ports the kernel gives them.

To record durations: `scripts/test --record-durations tests/support/durations.json` (any pytest run with
`-p tests.support.shard --record-durations PATH`). Each file that ran gets its setup, call and teardown seconds;
files that did not run keep their entries, files that are gone lose theirs. Record with the shards CI uses
(`TOOLHUB_TEST_SHARDS=2`), so a file's seconds are what it takes beside another shard. The committed file was seeded
from narrow runs on a busy shared machine, not a whole-suite run: the 29 test files that use the Gemini and Anthropic
fakes, tests/conformance and tests/tools (42 files, 353 s); every other file is still guessed.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import pytest

VARIABLE = "TOOLHUB_TEST_SHARD"
DURATIONS = Path(__file__).with_name("durations.json")
FILE_WEIGHT = 80
"""What an unrecorded test file weighs beyond its tests, in tests."""
SECONDS_PER_TEST = 0.04
"""Seconds per unit of that guess: so weighed, the suite (4,755 tests, 295 files) is 1,134 s; run in sequence, 1,119."""


def shard_of(spec: str) -> tuple[int, int]:
    """(index, count) of `i/n`, 0 <= i < n."""
    index, count = (int(part) for part in spec.split("/"))
    if not 0 <= index < count:
        raise pytest.UsageError(f"{VARIABLE}={spec}: the shard must be i/n with 0 <= i < n")
    return index, count


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--record-durations",
        metavar="PATH",
        help="merge each test file's seconds into PATH (JSON: file -> seconds), e.g. tests/support/durations.json",
    )


def pytest_configure(config: pytest.Config) -> None:
    path: str | None = config.getoption("record_durations")
    if path:
        config.pluginmanager.register(Recorder(Path(path), config.rootpath), "shard-durations")


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
    """The test files of each shard, by the committed durations."""
    return deal(work(items, load_durations(DURATIONS)), count)


def load_durations(path: Path) -> dict[str, float]:
    """The recorded seconds per test file; none when the file is missing, so every file falls back to the guess."""
    if not path.exists():
        return {}
    return {str(name): float(seconds) for name, seconds in json.loads(path.read_text()).items()}


def work(items: list[pytest.Item], durations: Mapping[str, float]) -> dict[str, float]:
    """Each test file's expected seconds: recorded, else guessed from its number of tests."""
    tests = Counter(item.location[0] for item in items)
    return {path: durations.get(path, SECONDS_PER_TEST * (n + FILE_WEIGHT)) for path, n in tests.items()}


def deal(seconds: Mapping[str, float], count: int) -> list[set[str]]:
    """The test files of each shard: the longest first (ties by path), each to the shard with the least work so far
    (ties to the lowest shard), so every shard process computes the same split from the same collection."""
    shards: list[set[str]] = [set() for _ in range(count)]
    loads = [0.0] * count
    for path, cost in sorted(seconds.items(), key=lambda pair: (-pair[1], pair[0])):
        lightest = loads.index(min(loads))
        shards[lightest].add(path)
        loads[lightest] += cost
    return shards


class Recorder:
    """Sums each test file's setup, call and teardown seconds, and merges them into `path` when the session ends.
    Files are named as pytest names them, relative to `root`."""

    def __init__(self, path: Path, root: Path) -> None:
        self.path, self.root = path, root
        self.seconds: dict[str, float] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        path = report.location[0]
        self.seconds[path] = self.seconds.get(path, 0.0) + report.duration

    def pytest_sessionfinish(self) -> None:
        if self.seconds:
            record(self.path, self.seconds, self.root)


def record(path: Path, seconds: Mapping[str, float], root: Path) -> None:
    """Merge `seconds` into the JSON at `path` under a lock (shards running at once each add their own files), and
    drop the entries of files no longer under `root`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        file.seek(0)
        text = file.read()
        merged: dict[str, float] = json.loads(text) if text.strip() else {}
        merged.update({name: round(value, 1) for name, value in seconds.items()})
        kept = {name: merged[name] for name in sorted(merged) if (root / name).exists()}
        file.seek(0)
        file.truncate()
        file.write(json.dumps(kept, indent=1) + "\n")
