"""pytest plugin for CI (`-p tests.support.strict_skips`, loaded by `.ci/run`): every skipped test is a failure.

A green run then means every test ran. Expected failures (`xfail`) keep their own meaning. Locally, without the
plugin, tests whose peers are missing skip as usual (`tests.support.peers`).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

PREFIX = "skipped, but this run allows no skips (tests.support.strict_skips): "


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    _fail_if_skipped(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, None]:
    outcome = yield
    _fail_if_skipped(outcome.get_result())  # a module-level skip or importorskip


def _fail_if_skipped(report: pytest.TestReport | pytest.CollectReport) -> None:
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    report.outcome = "failed"
    report.longrepr = PREFIX + reason.removeprefix("Skipped: ")
