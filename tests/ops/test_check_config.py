"""`toolhub check-config` refuses typos and unknown top-level keys ("did you mean"), and request defaults of the wrong
type; `--allow-unknown` lists them as ignored instead, for a file shared with a LiteLLM proxy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from hub.config import ConfigError, parse_config
from hub.ops.config_check import KeyProblem, key_problems
from tests.support.servers import ROOT

ENTRY = {"model_name": "a", "litellm_params": {"model": "openai/x"}}
SHARED_WITH_LITELLM: dict[str, Any] = {
    "model_list": [{**ENTRY, "litellm_params": {"model": "openai/x", "vertex_project": "p", "num_retries": 2}}],
    "general_settings": {"alerting": ["slack"], "master_key": "sk-m"},
    "router_settings": {"enable_pre_call_checks": True},
    "callback_settings": {"otel": {"message_logging": False}},
}


def check_config(tmp_path: Path, config: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return subprocess.run([sys.executable, "-m", "hub", "check-config", str(path), *args], cwd=ROOT,
                          env={**os.environ}, capture_output=True, text=True, timeout=60)  # fmt: skip


def test_typos_and_unknown_top_level_keys_are_refused_with_did_you_mean(tmp_path: Path) -> None:
    config = {"model_lsit": [ENTRY], "general_settings": {"master_kye": "sk-m"}, "extras": 1}
    result = check_config(tmp_path, config)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "config error at" in line]
    assert errors == [
        "toolhub: config error at model_lsit: unknown key; did you mean 'model_list'?",
        "toolhub: config error at extras: unknown top-level key (Toolhub reads model_list, general_settings, "
        "litellm_settings, router_settings, mcp_servers, environment_variables)",
        "toolhub: config error at general_settings.master_kye: unknown key; did you mean 'master_key'?",
    ]
    assert "--allow-unknown" in result.stderr
    assert "is not implemented by Toolhub and is ignored" not in result.stderr  # said once, as an error


def test_allow_unknown_lists_the_same_keys_as_ignored_with_the_guess(tmp_path: Path) -> None:
    result = check_config(tmp_path, {"model_lsit": [ENTRY], "general_settings": {"master_kye": "sk-m"}},
                          "--allow-unknown")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "ignored: model_lsit (did you mean 'model_list'?)" in result.stdout
    assert "ignored: general_settings.master_kye (did you mean 'master_key'?)" in result.stdout


def test_a_file_shared_with_litellm_passes_with_its_litellm_keys_listed_as_ignored(tmp_path: Path) -> None:
    result = check_config(tmp_path, SHARED_WITH_LITELLM)
    assert result.returncode == 0, result.stderr
    ignored = [line for line in result.stdout.splitlines() if line.startswith("ignored:")]
    assert ignored == [
        "ignored: callback_settings",
        "ignored: general_settings.alerting",
        "ignored: router_settings.enable_pre_call_checks",
        "ignored: model_list[0].litellm_params.vertex_project",
        "ignored: model_list[0].litellm_params.num_retries",
    ]


def test_typos_in_nested_sections_are_found_and_exact_or_litellm_keys_are_not() -> None:
    ignored = (
        "model_list[0].litellm_params.temprature",
        "model_list[0].litellm_params.api_version",
        "mcp_servers.git.comand",
        "router_settings.routing_strategy",  # a known key with a value Toolhub does not implement
        "litellm_settings.set_verbose",
    )
    assert key_problems(ignored) == [
        KeyProblem("model_list[0].litellm_params.temprature", "unknown key; did you mean 'temperature'?"),
        KeyProblem("mcp_servers.git.comand", "unknown key; did you mean 'command'?"),
    ]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("temperature", "hot", "must be a number (got 'hot')"),
        ("max_tokens", 1.5, "must be an integer (got 1.5)"),
        ("seed", True, "must be an integer (got True)"),
        ("stop", 3, "must be a string or a list (got 3)"),
        ("parallel_tool_calls", "yes", "must be true or false (got 'yes')"),
    ],
)
def test_a_request_default_of_the_wrong_type_fails_with_its_path(key: str, value: object, message: str) -> None:
    raw = {"model_list": [ENTRY, {"model_name": "b", "litellm_params": {"model": "openai/y", key: value}}]}
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, {})
    assert (caught.value.path, caught.value.message) == (f"model_list[1].litellm_params.{key}", message)


def test_request_defaults_of_the_right_type_are_sent() -> None:
    params = {"model": "openai/y", "temperature": 1, "top_p": 0.5, "stop": ["x"], "max_tokens": 9}
    config = parse_config({"model_list": [{"model_name": "b", "litellm_params": params}]}, {})
    assert config.models["b"][0].deployment.params == {"temperature": 1, "top_p": 0.5, "stop": ["x"], "max_tokens": 9}


def test_stdio_args_from_the_environment_are_printed_as_written_not_resolved(tmp_path: Path) -> None:
    server = {"command": "node", "args": ["server.js", "--api-key", "os.environ/CHECK_CONFIG_SECRET_TOKEN"]}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"mcp_servers": {"tool": server}}))
    environ = {**os.environ, "CHECK_CONFIG_SECRET_TOKEN": "tok-4f9a2c"}
    result = subprocess.run([sys.executable, "-m", "hub", "check-config", str(path)], cwd=ROOT, env=environ,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "tok-4f9a2c" not in result.stdout + result.stderr
    assert "  tool (stdio): node server.js --api-key os.environ/CHECK_CONFIG_SECRET_TOKEN\n" in result.stdout
