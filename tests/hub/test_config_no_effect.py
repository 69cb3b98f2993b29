"""Keys Toolhub implements but that do nothing where the file sets them (`mcp_servers.<name>.max_sessions`,
`idle_timeout` and `max_sessions_per_key` on a `session: shared` server; `cache_control_injection_points` on a
deployment that is not Anthropic's) are reported as ignored, and the start warning says why instead of calling them
"not implemented"."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from hub.config import parse_config
from tests.support.servers import ROOT

SHARED_REASON = (
    "it bounds per-client upstream sessions, which a `session: shared` server (the default) never opens; "
    "set `session: per_client` or `auto` to use it"
)
PER_CLIENT_SET = {"max_sessions": 4, "idle_timeout": 30, "max_sessions_per_key": 2}
UNREACHABLE_MCP = "http://127.0.0.1:9/mcp"  # the discard port: nothing listens, nothing is reached


def test_per_client_session_keys_set_on_a_shared_server_are_reported_ignored() -> None:
    servers: dict[str, Any] = {
        "implicit": {"url": UNREACHABLE_MCP, **PER_CLIENT_SET},
        "shared": {"url": UNREACHABLE_MCP, "session": "shared", "idle_timeout": 30},
        "per_client": {"url": UNREACHABLE_MCP, "session": "per_client", **PER_CLIENT_SET},
        "auto": {"url": UNREACHABLE_MCP, "session": "auto", **PER_CLIENT_SET},
        "defaults": {"url": UNREACHABLE_MCP},  # shared, with every per-client key defaulted: nothing to report
    }
    config = parse_config({"mcp_servers": servers}, {})
    assert config.ignored == (
        "mcp_servers.implicit.idle_timeout",
        "mcp_servers.implicit.max_sessions",
        "mcp_servers.implicit.max_sessions_per_key",
        "mcp_servers.shared.idle_timeout",
    )
    assert (config.mcp_servers["implicit"].spec.max_sessions, config.mcp_servers["implicit"].spec.idle_timeout) == (
        4,
        30.0,
    )


def test_an_unset_per_key_limit_from_the_environment_is_not_reported() -> None:
    server = {"url": UNREACHABLE_MCP, "max_sessions_per_key": "os.environ/UNSET_PER_KEY_LIMIT"}
    assert parse_config({"mcp_servers": {"s": server}}, {}).ignored == ()


def test_serve_warns_that_a_key_has_no_effect_here_with_the_reason(tmp_path: Path) -> None:
    params = {"model": "openai/x", "api_base": "http://127.0.0.1:9/v1", "vertex_project": "p",
              "cache_control_injection_points": [{"location": "message", "role": "system"}]}  # fmt: skip
    config = {
        "model_list": [{"model_name": "a", "litellm_params": params}],
        "mcp_servers": {
            "time": {"url": UNREACHABLE_MCP, "max_sessions": 4, "idle_timeout": 30},
            "own": {"url": UNREACHABLE_MCP, "session": "per_client", "max_sessions": 4, "idle_timeout": 30},
        },
    }
    warnings = [line.split(" WARNING toolhub: ", 1)[1] for line in _serve_until_bind(tmp_path, config).splitlines()
                if " WARNING toolhub: config key " in line]  # fmt: skip
    assert warnings == [
        "config key model_list[0].litellm_params.vertex_project is not implemented by Toolhub and is ignored",
        "config key model_list[0].litellm_params.cache_control_injection_points has no effect here: prompt-cache "
        "points are Anthropic's `cache_control`, sent to `anthropic/` deployments only",
        f"config key mcp_servers.time.idle_timeout has no effect here: {SHARED_REASON}",
        f"config key mcp_servers.time.max_sessions has no effect here: {SHARED_REASON}",
    ]


def test_check_config_lists_them_as_ignored(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"mcp_servers": {"time": {"url": UNREACHABLE_MCP, **PER_CLIENT_SET}}}))
    result = subprocess.run([sys.executable, "-m", "hub", "check-config", str(path)], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stdout.splitlines() if line.startswith("ignored:")] == [
        f"ignored: mcp_servers.time.idle_timeout (no effect here: {SHARED_REASON})",
        f"ignored: mcp_servers.time.max_sessions (no effect here: {SHARED_REASON})",
        f"ignored: mcp_servers.time.max_sessions_per_key (no effect here: {SHARED_REASON})",
    ]


def _serve_until_bind(tmp_path: Path, config: dict[str, Any]) -> str:
    """`toolhub serve`'s stderr, up to the failure to bind a port this test holds: the warnings come before."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = subprocess.run([sys.executable, "-m", "hub", "serve", "--config", str(path), "--host", "127.0.0.1",
                                 "--port", port], cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode != 0
    assert "address already in use" in result.stderr
    return result.stderr
