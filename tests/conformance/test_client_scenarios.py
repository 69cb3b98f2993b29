"""The conformance suite's client scenarios with the hub as the MCP client of the runner's mock server.

In client mode the runner starts a mock server per scenario and grades what the client did to it. The baseline is
the official client against the mock (`hub_client --direct`); the candidate is a hub in process with the mock as its
streamable-HTTP upstream, driven on its `/mcp` by the same official client (`hub_client`). The hub must pass every
scenario, with every check, as the direct client does. `auth/*` scenarios are left out: they grade a client's own
OAuth flows, which the hub's upstream connections do not have (the notes' direct client fails them too).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conformance.suite import (
    Check,
    SuiteRun,
    list_client_scenarios,
    read_results,
    regressions,
    require_node,
    run_client,
)

SCENARIOS = ["initialize", "tools_call", "elicitation-sep1034-client-defaults", "sse-retry"]
COMMAND = f"{sys.executable} -m tests.conformance.hub_client"
TIMED = frozenset({"client-sse-retry-timing"})
"""Graded on wall-clock delay (500 ms asked; 700-1000 ms is a WARNING): only the runner's verdict is compared."""
CLIENT_FAILED = ("Client exited with code", "Client timed out after")
"""What the runner prints when the command itself failed, e.g. a downstream call that got no answer through the hub."""


def _report(run: SuiteRun) -> str:
    return f"{run.url}: {run.summary()}\nresults in {run.out_dir}\nrunner output:\n{run.output[-4000:]}"


def _clean_exit(run: SuiteRun) -> bool:
    return not any(marker in run.output for marker in CLIENT_FAILED)


def test_client_results_are_read_from_unprefixed_folders(tmp_path: Path) -> None:
    folder = tmp_path / "sse-retry-2026-12-05T14-39-15-637Z"
    folder.mkdir()
    checks = [{"id": "incoming-request", "status": "INFO"},
              {"id": "client-sse-retry-timing", "status": "WARNING", "details": {"actualDelayMs": 812}}]  # fmt: skip
    (folder / "checks.json").write_text(json.dumps(checks))
    (tmp_path / "server-ping-2026-12-05T14-39-15-637Z").mkdir()

    results = read_results(tmp_path, client=True)

    assert results == {"sse-retry": [Check("client-sse-retry-timing", "WARNING")]}
    assert results["sse-retry"][0].details == {"actualDelayMs": 812}


def test_a_late_timed_check_is_no_regression_but_a_failed_one_is() -> None:
    direct = SuiteRun("direct", 0, "", Path("."), {"sse-retry": [Check("client-sse-retry-timing", "SUCCESS")]})
    late = SuiteRun("hub", 0, "", Path("."), {"sse-retry": [Check("client-sse-retry-timing", "WARNING", "812ms")]})
    failed = SuiteRun("hub", 0, "", Path("."), {"sse-retry": [Check("client-sse-retry-timing", "FAILURE", "2s")]})

    assert regressions(direct, late, warning_ok=TIMED) == []
    assert regressions(direct, late) == ["    client-sse-retry-timing: direct SUCCESS, WARNING: 812ms"]
    assert regressions(direct, failed, warning_ok=TIMED) == [
        "sse-retry: passes directly, FAILS through hub",
        "    client-sse-retry-timing: direct SUCCESS, FAILURE: 2s",
    ]


def test_every_client_scenario_but_auth_is_covered() -> None:
    require_node()
    listed = [s for s in list_client_scenarios() if not s.startswith("auth/")]
    assert listed == SCENARIOS


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_hub_as_client_passes_what_the_direct_client_passes(scenario: str, tmp_path: Path) -> None:
    require_node()
    direct = run_client(f"{COMMAND} --direct", scenario, tmp_path / "direct", "the direct client")
    assert direct.passing() == [scenario], _report(direct)
    assert _clean_exit(direct), _report(direct)

    hub = run_client(COMMAND, scenario, tmp_path / "hub", "the hub")

    diff = regressions(direct, hub, warning_ok=TIMED)
    assert not diff, "\n".join(diff) + "\n" + _report(hub)
    assert hub.passing() == [scenario], _report(hub)
    assert _clean_exit(hub), _report(hub)


def test_the_mock_server_is_initialized_by_the_hub(tmp_path: Path) -> None:
    """The graded client really is the hub (its client info), not the downstream client passed through."""
    require_node()
    run = run_client(COMMAND, "initialize", tmp_path, "the hub")
    checks = {c.id: c for c in run.scenarios.get("initialize", [])}
    assert "mcp-client-initialization" in checks, _report(run)
    assert checks["mcp-client-initialization"].details.get("clientName") == "toolhub", _report(run)
