"""`toolhub` as a real process: config checks, serving the example config without keys, graceful shutdown."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import httpx2
import pytest
import yaml
from mcp import Client, StdioServerParameters

import hub.mcp.stdio
from hub import cli
from tests.e2e.conftest import MASTER_KEY
from tests.fakes.openai_upstream import API_KEY, FakeOpenAI
from tests.support.servers import ROOT, serve_app, toolhub_process

EXAMPLE = ROOT / "configs" / "config.example.yaml"
BIN = Path(sys.executable).parent
EXIT_ON_SIGTERM = -signal.SIGTERM  # uvicorn shuts down gracefully, then re-raises the signal it caught
NO_KEYS = {"OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": "", "GEMINI_API_KEY": "", "TOOLHUB_MASTER_KEY": MASTER_KEY}


def run_toolhub(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def write_config(tmp_path: Path, config: object) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config) if not isinstance(config, str) else config)
    return path


def test_check_config_prints_what_the_example_would_serve() -> None:
    result = run_toolhub("check-config", str(EXAMPLE), env=NO_KEYS)
    assert result.returncode == 0, result.stderr
    assert "claude-sonnet-4-5 -> anthropic/claude-sonnet-4-5-20250929" in result.stdout
    assert (
        "gpt-5-mini -> openai/gpt-5-mini-2025-08-07 at https://api.openai.com/v1  [unavailable: OPENAI_API_KEY not set]"
        in result.stdout
    )
    assert "postgres_db (stdio)" in result.stdout


def test_malformed_yaml_fails_with_the_file_named(tmp_path: Path) -> None:
    path = write_config(tmp_path, "model_list: [\n  - model_name: x\n   bad indent")
    result = run_toolhub("check-config", str(path))
    assert result.returncode == 2
    assert f"{path} is not valid YAML" in result.stderr


def test_unknown_provider_fails_with_the_key_path(tmp_path: Path) -> None:
    config = {
        "model_list": [
            {"model_name": "a", "litellm_params": {"model": "openai/x"}},
            {"model_name": "b", "litellm_params": {"model": "bedrock/claude"}},
        ]
    }
    result = run_toolhub("check-config", str(write_config(tmp_path, config)))
    assert result.returncode == 2
    assert "config error at model_list[1].litellm_params.model: unknown provider 'bedrock'" in result.stderr


def test_wrong_type_fails_with_the_key_path(tmp_path: Path) -> None:
    config = {"model_list": [{"model_name": "a", "litellm_params": {"model": "openai/x", "timeout": "soon"}}]}
    result = run_toolhub("check-config", str(write_config(tmp_path, config)))
    assert result.returncode == 2
    assert "config error at model_list[0].litellm_params.timeout:" in result.stderr


def test_serve_refuses_to_start_without_the_referenced_master_key() -> None:
    result = run_toolhub("serve", "--config", str(EXAMPLE), "--port", "1", env={**NO_KEYS, "TOOLHUB_MASTER_KEY": ""})
    assert result.returncode == 2
    assert "general_settings.master_key: environment variable TOOLHUB_MASTER_KEY is not set" in result.stderr


def test_example_config_serves_without_provider_keys_and_names_the_missing_one(tmp_path: Path) -> None:
    config = yaml.safe_load(EXAMPLE.read_text())
    config["router_settings"] = {"routing_strategy": "least-busy", "enable_pre_call_checks": True, "num_retires": 1}
    path = write_config(tmp_path, config)
    with toolhub_process(path, env=NO_KEYS) as (url, proc):
        auth = {"Authorization": f"Bearer {MASTER_KEY}"}
        models = httpx2.get(f"{url}/v1/models", headers=auth).json()
        assert [m["id"] for m in models["data"]] == ["claude-sonnet-4-5", "gemini-3-flash", "gpt-5-mini"]
        response = httpx2.post(
            f"{url}/v1/chat/completions",
            headers=auth,
            json={"model": "gpt-5-mini", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert response.status_code == 503
        assert "OPENAI_API_KEY" in response.json()["error"]["message"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == EXIT_ON_SIGTERM
        stderr = proc.stderr.read().decode() if proc.stderr else ""
    assert "config key router_settings.enable_pre_call_checks is not implemented by Toolhub and is ignored\n" in stderr
    assert "num_retires is not implemented by Toolhub and is ignored (did you mean 'num_retries'?" in stderr
    assert "routing_strategy" not in stderr  # implemented by hub/router


def test_sigterm_lets_a_running_stream_finish(tmp_path: Path) -> None:
    fake = FakeOpenAI()
    with serve_app(fake.app) as upstream:
        config = {
            "model_list": [
                {
                    "model_name": "slow",
                    "litellm_params": {"model": "openai/slow-0.2", "api_base": f"{upstream}/v1", "api_key": API_KEY},
                }
            ]
        }
        with toolhub_process(write_config(tmp_path, config)) as (url, proc):
            body = {"model": "slow", "messages": [{"role": "user", "content": "hello there"}], "stream": True}
            with httpx2.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=30) as response:
                lines = response.iter_lines()
                first = next(lines)
                proc.send_signal(signal.SIGTERM)
                rest = [line for line in lines if line]
            assert proc.wait(20) == EXIT_ON_SIGTERM
    assert json.loads(first.removeprefix("data: "))["choices"][0]["delta"]["role"] == "assistant"
    assert rest[-1] == "data: [DONE]"
    assert len(rest) == 7  # after the role chunk: five content chunks, the finish chunk and [DONE]


def test_check_config_needs_no_master_key_and_says_serve_would_refuse() -> None:
    result = run_toolhub("check-config", str(EXAMPLE), env={**NO_KEYS, "TOOLHUB_MASTER_KEY": ""})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "master key: its environment variable is not set" in lines
    assert (
        "serve: would refuse to start: general_settings.master_key: environment variable TOOLHUB_MASTER_KEY is not "
        "set; set it, or remove master_key to run without authentication" in lines
    )


def test_check_config_with_the_master_key_set_reports_nothing_to_refuse() -> None:
    result = run_toolhub("check-config", str(EXAMPLE), env=NO_KEYS)
    assert result.returncode == 0, result.stderr
    assert "master key: set" in result.stdout.splitlines()
    assert "serve: would refuse" not in result.stdout


def example_with_time_server(tmp_path: Path) -> Path:
    """The example config (its unset master-key reference included) with mcp-server-time as the only upstream."""
    config = yaml.safe_load(EXAMPLE.read_text())
    config["mcp_servers"] = {"time": {"command": str(BIN / "mcp-server-time"), "args": ["--local-timezone", "UTC"]}}
    return write_config(tmp_path, config)


def test_tools_runs_without_the_master_key(tmp_path: Path) -> None:
    result = run_toolhub("tools", "--config", str(example_with_time_server(tmp_path)), env={"TOOLHUB_MASTER_KEY": ""})
    assert result.returncode == 0, result.stderr
    assert "  time (stdio): ready - 2 tools" in result.stdout.splitlines()


@pytest.mark.anyio
async def test_stdio_serves_the_readme_desktop_snippet_without_the_master_key(tmp_path: Path) -> None:
    # A desktop client launches `toolhub stdio --config ...` with a bare environment: no TOOLHUB_MASTER_KEY.
    bare = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/")}
    for config in (EXAMPLE, example_with_time_server(tmp_path)):
        params = StdioServerParameters(command=sys.executable, args=["-m", "hub", "stdio", "--config", str(config)],
                                       cwd=str(ROOT), env=bare)  # fmt: skip
        async with Client(params, mode="legacy") as client:
            names = [t.name for t in (await client.list_tools()).tools]
            with anyio.fail_after(30):  # on a loaded machine an upstream may join after the first listing
                while config != EXAMPLE and len(names) < 2:
                    await anyio.sleep(0.05)
                    names = [t.name for t in (await client.list_tools()).tools]
            info = client.server_info
        assert info is not None and info.name == "toolhub"
    assert names == ["time__convert_time", "time__get_current_time"]


async def fails_in_a_task_group() -> None:
    async def task() -> None:
        raise OSError(24, "Too many open files")

    async with anyio.create_task_group() as tg:
        tg.start_soon(task)


@pytest.mark.parametrize("nested", [False, True])
def test_a_start_failure_of_stdio_is_explained_on_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], nested: bool
) -> None:
    async def broken(config: object, *, separator: str | None = None) -> None:
        if nested:
            await fails_in_a_task_group()
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(hub.mcp.stdio, "serve_stdio", broken)
    code = cli.main(["stdio", "--config", str(example_with_time_server(tmp_path))])
    err = capsys.readouterr().err
    assert code == 1
    assert err.endswith("toolhub: stdio failed: OSError: [Errno 24] Too many open files\n")


def test_serve_on_a_descriptor_that_is_not_an_open_socket_fails_with_a_clear_error() -> None:
    result = run_toolhub("serve", "--config", str(EXAMPLE), "--fd", "987", env=NO_KEYS)
    assert result.returncode == 3  # a start failure, as uvicorn's own bind errors
    assert result.stderr.endswith("ERROR toolhub: cannot serve on --fd 987: [Errno 9] Bad file descriptor\n")
