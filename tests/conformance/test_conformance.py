"""The official MCP conformance suite against our fixture server, directly and through the hub's `/mcp/<server>`.

The hub must pass every scenario (and every check) the fixture passes directly, for an upstream reached over
streamable HTTP (`conf`) and one it launches over stdio (`conf_stdio`). The suite runner sends no Authorization
header, so the hub runs with an open config (no master key).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
import yaml

from tests.conformance.suite import SuiteRun, list_server_scenarios, regressions, require_node, run_suite
from tests.support.servers import ROOT, inherited_socket, stop, toolhub_process, wait_until_serving

FIXTURE = ROOT / "tests" / "conformance" / "fixture_server.py"
HUB_UPSTREAMS = ["conf", "conf_stdio"]


@contextlib.contextmanager
def fixture_process(log_path: Path) -> Iterator[str]:
    """`fixture_server.py --fd N` as a real process on a socket bound here; yields its MCP URL."""
    with log_path.open("wb") as log, inherited_socket() as (sock, port):
        proc = subprocess.Popen([sys.executable, str(FIXTURE), "--fd", str(sock.fileno())], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=log, pass_fds=(sock.fileno(),))  # fmt: skip
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/mcp", proc)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        stop(proc, timeout=10)


@pytest.fixture(scope="module")
def fixture_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_node()
    with fixture_process(tmp_path_factory.mktemp("fixture") / "stderr.log") as url:
        yield url


@pytest.fixture(scope="module")
def direct_run(fixture_url: str, tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    return run_suite(fixture_url, tmp_path_factory.mktemp("direct"))


def wait_until_ready(base_url: str, timeout: float = 30) -> None:
    """Wait until the hub reports healthy in strict mode: every upstream connected, none down (degraded)."""
    deadline = time.monotonic() + timeout
    body = ""
    with httpx2.Client(timeout=5) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx2.HTTPError):
                response = client.get(f"{base_url}/health/readiness?strict=true")
                body = response.text
                if response.status_code == 200:
                    return
            time.sleep(0.1)
    pytest.fail(f"hub not ready within {timeout} s: {body}")


@pytest.fixture(scope="module")
def hub_url(fixture_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config = {
        "mcp_servers": {
            "conf": {"transport": "http", "url": fixture_url},
            "conf_stdio": {"transport": "stdio", "command": sys.executable, "args": [str(FIXTURE), "--stdio"]},
        }
    }
    path = tmp_path_factory.mktemp("hub") / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    with toolhub_process(path) as (url, _proc):
        wait_until_ready(url)
        yield url


def _report(run: SuiteRun) -> str:
    return f"{run.summary()}\nresults in {run.out_dir}\nrunner output:\n{run.runner_summary()}"


def test_fixture_passes_every_scenario_directly(direct_run: SuiteRun) -> None:
    expected = list_server_scenarios()
    missing = sorted(set(expected) - set(direct_run.scenarios))
    problems = [f"{s}: no result" for s in missing] + direct_run.failures()
    assert not problems, "fixture fails conformance directly:\n" + "\n".join(problems) + "\n" + _report(direct_run)
    assert direct_run.returncode == 0, _report(direct_run)
    assert direct_run.passing() == sorted(expected)
    print(f"direct: {direct_run.summary()}")


@pytest.mark.parametrize("upstream", HUB_UPSTREAMS)
def test_hub_passes_every_scenario_the_fixture_passes(
    upstream: str, hub_url: str, direct_run: SuiteRun, tmp_path: Path
) -> None:
    run = run_suite(f"{hub_url}/mcp/{upstream}", tmp_path / upstream)
    diff = regressions(direct_run, run)
    lost = [s for s in direct_run.passing() if not run.passed(s)]
    headline = (f"{len(lost)} of the {len(direct_run.passing())} scenarios the fixture passes directly fail through "
                f"the hub ({upstream}): {', '.join(lost)}")  # fmt: skip
    details = "\n".join(diff)
    assert not diff, f"{headline}\n{details}\ndirect: {direct_run.summary()}\nhub: {_report(run)}"
    print(f"hub /mcp/{upstream}: {run.summary()}")
