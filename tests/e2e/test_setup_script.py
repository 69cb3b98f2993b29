"""`scripts/setup` (run by `scripts/serve` and `scripts/test`) in a scratch checkout with recording pip and npm.

The fake `.venv/bin/python` and `npm` append their arguments to a log, so each test sees what would be installed.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.support.servers import ROOT

RECORDER = '#!/usr/bin/env bash\necho "{name} $*" >> "{log}"\n'


def executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of the files setup reads, with a recording venv Python, mcp-proxy venv and npm."""
    root = tmp_path / "checkout"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "setup", root / "scripts" / "setup")
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    shutil.copytree(ROOT / "tests" / "node", root / "tests" / "node", ignore=shutil.ignore_patterns("node_modules"))
    log = tmp_path / "calls.log"
    log.touch()
    executable(root / ".venv" / "bin" / "python", RECORDER.format(name="python", log=log))
    executable(root / ".venv-mcp-proxy" / "bin" / "mcp-proxy", "#!/bin/sh\n")
    npm = RECORDER.format(name="npm", log=log) + "mkdir -p tests/node/node_modules\n"  # as npm ci would
    executable(tmp_path / "bin" / "npm", npm)
    return root


def setup(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if k != "TOOLHUB_REQUIRE_NODE"}  # CI sets it for the whole run
    full_env = {**inherited, "NPM": str(root.parent / "bin" / "npm"), "TOOLHUB_SETUP_NO_APT": "1", **env}
    return subprocess.run([str(root / "scripts" / "setup"), *args], env=full_env, capture_output=True, text=True,
                          timeout=60)  # fmt: skip


def calls(root: Path) -> list[str]:
    return (root.parent / "calls.log").read_text().splitlines()


PIP = [
    "python -m pip install --quiet --disable-pip-version-check --upgrade pip",
    "python -m pip install --quiet --disable-pip-version-check -e .[dev]",
]
NPM_CI = "npm ci --prefix tests/node --no-audit --no-fund --loglevel=error"


def test_pip_runs_once_and_again_only_after_pyproject_changes(checkout: Path) -> None:
    first = setup(checkout, "--python-only")
    second = setup(checkout, "--python-only")
    after_first = calls(checkout)
    with (checkout / "pyproject.toml").open("a") as f:
        f.write("\n# a new dependency\n")
    third = setup(checkout, "--python-only")

    assert (first.returncode, second.returncode, third.returncode) == (0, 0, 0), first.stderr + third.stderr
    assert after_first == PIP
    assert calls(checkout) == PIP + PIP


def test_a_failed_install_leaves_no_stamp_so_the_next_run_retries(checkout: Path) -> None:
    log = checkout.parent / "calls.log"
    executable(checkout / ".venv" / "bin" / "python", f'#!/usr/bin/env bash\necho "python $*" >> "{log}"\nexit 1\n')
    failed = setup(checkout, "--python-only")
    executable(checkout / ".venv" / "bin" / "python", RECORDER.format(name="python", log=log))
    retried = setup(checkout, "--python-only")

    assert failed.returncode == 1
    assert retried.returncode == 0
    assert calls(checkout) == PIP[:1] + PIP


def test_npm_ci_runs_once_and_again_only_after_the_lockfile_changes(checkout: Path) -> None:
    runs = [setup(checkout), setup(checkout)]
    once = calls(checkout)
    lock = checkout / "tests" / "node" / "package-lock.json"
    lock.write_text(lock.read_text() + "\n")
    runs.append(setup(checkout))

    assert [run.returncode for run in runs] == [0, 0, 0], [run.stderr for run in runs]
    assert once == [*PIP, NPM_CI]
    assert calls(checkout) == [*PIP, NPM_CI, NPM_CI]


def test_without_npm_setup_warns_locally_and_fails_when_node_is_required(checkout: Path) -> None:
    local = setup(checkout, NPM="/nonexistent/npm")
    ci = setup(checkout, NPM="/nonexistent/npm", TOOLHUB_REQUIRE_NODE="1")

    assert local.returncode == 0
    assert "npm not found; tests that need Node MCP servers will be skipped" in local.stderr
    assert ci.returncode == 1
    assert "npm not found, and TOOLHUB_REQUIRE_NODE=1" in ci.stderr
