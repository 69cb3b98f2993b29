"""tests/support/shard.py by recorded durations: the split follows seconds, is the same from any collection order,
and `--record-durations` merges what a run took into the JSON the split reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.shard import (
    DURATIONS,
    FILE_WEIGHT,
    SECONDS_PER_TEST,
    Recorder,
    deal,
    load_durations,
    work,
)

ROOT = Path(__file__).parents[2]


class _Item:
    def __init__(self, path: str) -> None:
        self.location = (path, 0, "test")


class _Report:
    def __init__(self, path: str, duration: float) -> None:
        self.location, self.duration = (path, 0, "test"), duration


def test_the_longest_file_goes_first_and_each_next_to_the_least_loaded_shard() -> None:
    seconds = {"a.py": 5.0, "b.py": 4.0, "c.py": 3.0, "d.py": 3.0, "e.py": 1.0}
    assert deal(seconds, 2) == [{"a.py", "d.py"}, {"b.py", "c.py", "e.py"}]
    assert deal(seconds, 3) == [{"a.py"}, {"b.py", "e.py"}, {"c.py", "d.py"}]


def test_the_split_does_not_depend_on_the_order_files_were_collected_in() -> None:
    seconds = {f"f{i}.py": float(i % 4) for i in range(40)}
    shuffled = dict(sorted(seconds.items(), key=lambda pair: int(pair[0][1:-3]) * 7 % 40))
    assert deal(shuffled, 2) == deal(dict(reversed(seconds.items())), 2) == deal(seconds, 2)
    assert deal({"b.py": 1.0, "a.py": 1.0}, 2) == [{"a.py"}, {"b.py"}]


def test_recorded_seconds_replace_the_guess_and_unlisted_files_are_guessed_from_their_tests() -> None:
    items: list[Any] = [_Item("slow.py"), _Item("slow.py"), *[_Item("many.py")] * 300]
    assert work(items, {"slow.py": 95.5}) == {"slow.py": 95.5, "many.py": SECONDS_PER_TEST * (300 + FILE_WEIGHT)}


def test_two_slow_files_with_few_tests_land_in_different_shards_once_their_seconds_are_known() -> None:
    items: list[Any] = [*[_Item("e2e_a.py")] * 3, *[_Item("e2e_b.py")] * 3]
    items += [_Item(f"unit{i}.py") for i in range(5) for _ in range(200)]
    guessed = deal(work(items, {}), 2)
    timed = deal(work(items, {"e2e_a.py": 60.0, "e2e_b.py": 60.0}), 2)
    assert any({"e2e_a.py", "e2e_b.py"} <= shard for shard in guessed)
    assert all(len({"e2e_a.py", "e2e_b.py"} & shard) == 1 for shard in timed)


def test_the_recorder_sums_each_files_phases_and_merges_them_into_the_json(tmp_path: Path) -> None:
    for name in ("kept.py", "ran.py"):
        (tmp_path / name).write_text("")
    durations = tmp_path / "durations.json"
    durations.write_text(json.dumps({"kept.py": 7.0, "ran.py": 1.0, "gone.py": 3.0}))
    recorder = Recorder(durations, tmp_path)
    for seconds in (0.25, 1.5, 0.125):
        recorder.pytest_runtest_logreport(_Report("ran.py", seconds))  # pyright: ignore[reportArgumentType]
    recorder.pytest_sessionfinish()
    assert load_durations(durations) == {"kept.py": 7.0, "ran.py": 1.9}


def test_shards_run_disjoint_files_and_record_only_their_own(tmp_path: Path) -> None:
    (tmp_path / "test_big.py").write_text("".join(f"def test_{i}() -> None:\n    pass\n" for i in range(3)))
    (tmp_path / "test_small.py").write_text("def test_one() -> None:\n    pass\n")
    for index in (0, 1):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TOOLHUB_TEST_SHARD": f"{index}/2"}
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # the installed plugins only slow these two tiny runs down
        command = [sys.executable, "-m", "pytest", "-q", "-p", "tests.support.shard", "-p", "no:cacheprovider"]
        command += ["--record-durations", f"shard{index}.json"]
        subprocess.run(command, cwd=tmp_path, env=env, check=True, capture_output=True, timeout=60)
    assert set(load_durations(tmp_path / "shard0.json")) == {"test_big.py"}
    assert set(load_durations(tmp_path / "shard1.json")) == {"test_small.py"}


def test_the_committed_durations_are_seconds_of_test_files_named_from_the_root() -> None:
    durations = load_durations(DURATIONS)
    assert all(name.startswith("tests/") and name.endswith(".py") and s >= 0 for name, s in durations.items())
    assert any((ROOT / name).is_file() for name in durations)  # a stale entry is harmless: only collected files count
