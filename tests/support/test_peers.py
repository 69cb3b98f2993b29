"""Missing test peers skip locally and fail where required; `strict_skips` turns every skip into a failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.peers import missing_peer, require_files
from tests.support.servers import ROOT


def test_a_missing_peer_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOOLHUB_REQUIRE_NODE", raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        missing_peer("mcp-proxy not installed")
    assert str(skipped.value) == "mcp-proxy not installed"


def test_a_missing_peer_fails_where_peers_are_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLHUB_REQUIRE_NODE", "1")
    with pytest.raises(pytest.fail.Exception) as failed:
        missing_peer("mcp-proxy not installed")
    assert str(failed.value) == "mcp-proxy not installed (TOOLHUB_REQUIRE_NODE=1: every test peer is required here)"


def test_require_files_names_the_missing_ones_relative_to_the_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOOLHUB_REQUIRE_NODE", raising=False)
    present, absent = ROOT / "pyproject.toml", ROOT / "tests" / "node" / "no-such-package"
    require_files(present, hint="unused")
    with pytest.raises(pytest.skip.Exception) as skipped:
        require_files(present, absent, hint="run `npm ci --prefix tests/node`")
    assert str(skipped.value) == "tests/node/no-such-package missing: run `npm ci --prefix tests/node`"


SAMPLE = """
import pytest

def test_passes():
    pass

def test_skips_at_run_time():
    pytest.skip("no server-everything")

@pytest.mark.skipif(True, reason="needs TOOLHUB_TEST_REDIS_URL")
def test_skipped_by_mark():
    pass

@pytest.mark.xfail(reason="known bug", strict=True)
def test_expected_failure():
    assert False
"""


def run_pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "300"}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", *args], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)  # fmt: skip


def run_sample(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    return run_pytest(tmp_path, *args, "test_sample.py")


def test_without_the_plugin_skips_pass(tmp_path: Path) -> None:
    result = run_sample(tmp_path)
    assert result.returncode == 0, result.stdout
    assert "1 passed, 2 skipped, 1 xfailed" in result.stdout


def test_with_strict_skips_every_skip_fails_and_xfail_keeps_its_meaning(tmp_path: Path) -> None:
    result = run_sample(tmp_path, "-p", "tests.support.strict_skips")
    assert result.returncode == 1, result.stdout
    assert "1 failed, 1 passed, 1 xfailed, 1 error" in result.stdout  # the skipif mark fires in setup: an error
    prefix = "skipped, but this run allows no skips (tests.support.strict_skips): "
    assert "FAILED test_sample.py::test_skips_at_run_time - skipped, but" in result.stdout
    assert "ERROR test_sample.py::test_skipped_by_mark - skipped, but" in result.stdout
    assert f"{prefix}no server-everything" in result.stdout
    assert f"{prefix}needs TOOLHUB_TEST_REDIS_URL" in result.stdout


def test_with_strict_skips_a_module_level_skip_fails(tmp_path: Path) -> None:
    (tmp_path / "test_module.py").write_text('import pytest\npytest.skip("no chromium", allow_module_level=True)\n')
    result = run_pytest(tmp_path, "-p", "tests.support.strict_skips", "test_module.py")
    assert result.returncode != 0, result.stdout
    assert "no chromium" in result.stdout
    assert "1 error" in result.stdout
