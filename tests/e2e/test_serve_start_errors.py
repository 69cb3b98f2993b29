"""`toolhub serve` / `check-config` / `keys` as real processes, refusing what they cannot serve in one line (QA ops
findings 2, 3, 7 and 8): a `database_url` of another scheme, a port past 65535, a socket that cannot be had, a
database that refuses the connection. Exit codes as the README gives them: 2 config or argument, 3 start failure."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.servers import inherited_socket, refused_port

MASTER = "sk-toolhub-test-master"
LISTEN_FAILURE = 3


def toolhub(cwd: Path, *args: str, pass_fds: tuple[int, ...] = ()) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TOOLHUB_MASTER_KEY": MASTER}
    return subprocess.run([sys.executable, "-m", "hub", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120, pass_fds=pass_fds, check=False)  # fmt: skip


def config(tmp_path: Path, database_url: str) -> str:
    path = tmp_path / "config.yaml"
    general = {"master_key": "os.environ/TOOLHUB_MASTER_KEY", "database_url": database_url}
    path.write_text(yaml.safe_dump({"model_list": [], "general_settings": general}))
    return str(path)


@pytest.mark.parametrize(
    "command",
    [
        ["check-config", "CONFIG"],
        ["serve", "--config", "CONFIG", "--port", "0"],
        ["keys", "--config", "CONFIG", "list"],
    ],
)
def test_a_database_url_of_another_scheme_is_a_config_error_and_makes_no_file(
    tmp_path: Path, command: list[str]
) -> None:
    path = config(tmp_path, "postgresql+mysqldb://postgres:s3cret@127.0.0.1:5432/test")
    result = toolhub(tmp_path, *(path if arg == "CONFIG" else arg for arg in command))
    assert result.returncode == 2, result.stderr
    assert "config error at general_settings.database_url: unsupported scheme 'postgresql+mysqldb'" in result.stderr
    assert "s3cret" not in result.stderr + result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_past_65535_is_an_argument_error(tmp_path: Path, workers: str) -> None:
    result = toolhub(tmp_path, "serve", "--config", config(tmp_path, "x.db"), "--port", "99999", "--workers", workers)
    assert result.returncode == 2
    assert "argument --port: must be 0..65535, not 99999" in result.stderr


def test_workers_on_a_port_in_use_fail_in_one_line(tmp_path: Path) -> None:
    with inherited_socket() as (_, port):
        result = toolhub(tmp_path, "serve", "--config", config(tmp_path, "x.db"), "--port", str(port), "--workers", "2")
    assert result.returncode == LISTEN_FAILURE
    assert f"cannot listen on 127.0.0.1:{port}: [Errno 98] Address already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_workers_on_a_host_that_does_not_resolve_fail_in_one_line(tmp_path: Path) -> None:
    args = ["--host", "300.1.1.1", "--port", "0", "--workers", "2"]
    result = toolhub(tmp_path, "serve", "--config", config(tmp_path, "x.db"), *args)
    assert result.returncode == LISTEN_FAILURE
    assert "cannot listen on 300.1.1.1:0: " in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_descriptor_that_is_not_open_fails_in_one_line(tmp_path: Path, workers: str) -> None:
    result = toolhub(tmp_path, "serve", "--config", config(tmp_path, "x.db"), "--fd", "987", "--workers", workers)
    assert result.returncode == LISTEN_FAILURE
    assert "cannot serve on --fd 987: [Errno 9] Bad file descriptor" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_descriptor_that_is_not_a_socket_fails_in_one_line(tmp_path: Path) -> None:
    path = config(tmp_path, "x.db")
    with (tmp_path / "plain").open("w") as plain:
        fd = str(plain.fileno())
        result = toolhub(tmp_path, "serve", "--config", path, "--fd", fd, pass_fds=(plain.fileno(),))
    assert result.returncode == LISTEN_FAILURE
    assert f"cannot serve on --fd {fd}: [Errno 88] Socket operation on non-socket" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_socket_that_is_not_listening_fails_in_one_line(tmp_path: Path) -> None:
    path = config(tmp_path, "x.db")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        fd = str(sock.fileno())
        result = toolhub(tmp_path, "serve", "--config", path, "--fd", fd, pass_fds=(sock.fileno(),))
    assert result.returncode == LISTEN_FAILURE
    assert f"cannot serve on --fd {fd}: not a listening stream socket" in result.stderr


@pytest.mark.parametrize("database", ["postgresql", "sqlite directory"])
def test_a_database_that_refuses_is_one_error_line_without_tracebacks(tmp_path: Path, database: str) -> None:
    with refused_port() as port:
        url = f"postgresql://postgres@127.0.0.1:{port}/test"
        if database != "postgresql":
            (tmp_path / "db").mkdir()
            url = f"sqlite:///{tmp_path / 'db'}"
        result = toolhub(tmp_path, "serve", "--config", config(tmp_path, url), "--port", "0")
    assert result.returncode == LISTEN_FAILURE
    expected = "cannot connect to PostgreSQL: [Errno 111]" if database == "postgresql" else "cannot open SQLite"
    assert f"ERROR:    database: {expected}" in result.stderr
    assert "Traceback" not in result.stderr and "Exception in thread" not in result.stderr


def test_the_traceback_of_a_refusing_database_is_logged_at_debug_level(tmp_path: Path) -> None:
    with refused_port() as port:
        path = config(tmp_path, f"postgresql://postgres@127.0.0.1:{port}/test")
        result = toolhub(tmp_path, "serve", "--config", path, "--port", "0", "--log-level", "debug")
    assert result.returncode == LISTEN_FAILURE
    assert "DEBUG:    application startup failed:\nTraceback" in result.stderr
    assert result.stderr.count("ERROR:    database: cannot connect to PostgreSQL") == 1
