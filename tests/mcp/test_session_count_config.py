"""`mcp_servers.<name>.max_sessions` and `max_sessions_per_key` are whole numbers from 1 to 1,000,000 (YAML's `true`
or `4.0` is no count, 2**70 no limit); `max_sessions_per_key` on a `shared` server, which opens no per-client
sessions, is reported with the ignored keys (at start and by `toolhub check-config`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from hub.config import ConfigError, parse_config
from tests.support.servers import ROOT

BOUND = 1_000_000
"""`hub.mcp.config.BOUND`."""
NOT_AN_INTEGER = "Input should be an integer, not true/false or a decimal number"


def parse(environ: dict[str, str] | None = None, **options: Any) -> Any:
    return parse_config({"mcp_servers": {"s": {"command": "x", "session": "per_client", **options}}}, environ or {})


@pytest.mark.parametrize("key", ["max_sessions", "max_sessions_per_key"])
@pytest.mark.parametrize(
    ("value", "message"),
    [(True, NOT_AN_INTEGER), (False, NOT_AN_INTEGER), (4.0, NOT_AN_INTEGER), (1.5, NOT_AN_INTEGER),
     (0, "Input should be greater than or equal to 1"),
     (BOUND + 1, "Input should be less than or equal to 1000000"),
     (2**70, "Input should be less than or equal to 1000000")],
)  # fmt: skip
def test_a_session_count_that_is_no_whole_number_from_1_to_a_million_is_a_config_error(
    key: str, value: Any, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(**{key: value})
    assert (caught.value.path, caught.value.message) == (f"mcp_servers.s.{key}", f"{message} (got {value!r})")


def test_session_counts_from_1_to_a_million_and_from_the_environment_are_taken() -> None:
    spec = parse(max_sessions=BOUND, max_sessions_per_key=1).mcp_servers["s"].spec
    assert (spec.max_sessions, spec.max_sessions_per_key) == (1_000_000, 1)
    spec = parse({"N": "7"}, max_sessions="os.environ/N", max_sessions_per_key="os.environ/N").mcp_servers["s"].spec
    assert (spec.max_sessions, spec.max_sessions_per_key) == (7, 7)


def test_max_sessions_per_key_on_a_shared_server_is_reported_ignored() -> None:
    servers = {name: {"command": "x", "session": session, "max_sessions_per_key": 2}
               for name, session in (("one", "shared"), ("two", "per_client"), ("three", "auto"))}  # fmt: skip
    servers["four"] = {"command": "x"}  # shared by default, no per-key limit: nothing to report
    config = parse_config({"mcp_servers": servers}, {})
    assert config.ignored == ("mcp_servers.one.max_sessions_per_key",)
    assert [config.mcp_servers[n].spec.max_sessions_per_key for n in ("one", "two", "three", "four")] == [2, 2, 2, None]


def test_check_config_lists_it_ignored_and_refuses_a_count_of_true(tmp_path: Path) -> None:
    def check(server: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump({"mcp_servers": {"time": {"command": "mcp-server-time", **server}}}))
        return subprocess.run([sys.executable, "-m", "hub", "check-config", str(path)], cwd=ROOT, env={**os.environ},
                              capture_output=True, text=True, timeout=60)  # fmt: skip

    listed = check({"max_sessions_per_key": 2})
    assert listed.returncode == 0
    assert "ignored: mcp_servers.time.max_sessions_per_key (no effect here: " in listed.stdout
    refused = check({"session": "per_client", "max_sessions": True})
    assert refused.returncode == 2
    assert refused.stderr.splitlines()[-1] == (
        f"toolhub: config error at mcp_servers.time.max_sessions: {NOT_AN_INTEGER} (got True)"
    )
