"""Every way a config file can fail to load is a ConfigError naming the file (and the line when known): never a
UnicodeDecodeError, RecursionError, ValueError or hang out of the loader, which would crash `serve`, `check-config`
and, worse, a reload of a running gateway."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hub.config import ConfigError, load_config

LAUGHS = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 10))


def failure(tmp_path: Path, content: bytes) -> ConfigError:
    path = tmp_path / "config.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        load_config(path, {}, serving=False)
    return caught.value


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"model_list: []\n# caf\xe9\n", "is not UTF-8 text: byte 0xe9 on line 2"),
        ("model_list: []\n".encode("utf-16"), "is not UTF-8 text: byte 0xff on line 1"),
        (b"x: &a [*a]\n", "line 1, column 8: the alias *a is inside the node it names"),
        (b"model_list: &a [*a]\n", "line 1, column 17: the alias *a is inside the node it names"),
        (b"general_settings: &a {master_key: sk-1,\n  x: *a}\n", "line 2, column 6: the alias *a is inside"),
        (b"environment_variables: &a {A: *a}\n", "the alias *a is inside the node it names"),
        (b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n", "line 1, column 103: nested more than 100 levels deep"),
        (b"a: " + b"{a: " * 3000 + b"1" + b"}" * 3000 + b"\n", "nested more than 100 levels deep"),
        (("a:\n" + "".join(" " * (i + 1) + "b:\n" for i in range(1500))).encode(), "line 101, column 101: nested"),
        (b"l0: &l0 x\n" + LAUGHS.encode(), "line 7, column 55: its aliases expand to more than 1000000 values"),
        (b"a: 2024-13-45\n", "line 1, column 4: cannot read '2024-13-45' as a timestamp: month must be in 1..12"),
        (b"a: !!float abc\n", "line 1, column 4: cannot read 'abc' as a float"),
        (b"a: !!timestamp x\n", "line 1, column 4: cannot read 'x' as a timestamp"),
        (b"a: !!bool x\n", "line 1, column 4: cannot read 'x' as a bool"),
        (b"model_list: [\n  - bad indent\n x", "is not valid YAML at line 2, column 3: expected the node content"),
        (b"a: !custom x\n", "is not valid YAML at line 1, column 4: could not determine a constructor"),
        (
            b"model_list: []\nx: a\x00b\n",
            "is not valid YAML at line 2, column 5: YAML does not allow the character #x0000",
        ),  # fmt: skip
    ],
)
def test_a_file_that_cannot_be_read_as_yaml_is_a_config_error_naming_the_file_and_line(
    tmp_path: Path, content: bytes, says: str
) -> None:
    error = failure(tmp_path, content)
    assert error.path == ""
    assert error.message.startswith(str(tmp_path / "config.yaml")), error.message
    assert says in error.message, error.message
    assert "\n" not in error.message


def test_aliases_that_expand_a_lot_are_refused_quickly(tmp_path: Path) -> None:
    started = time.monotonic()
    failure(tmp_path, b"l0: &l0 x\n" + LAUGHS.encode())  # 10**9 values once expanded
    assert time.monotonic() - started < 5


def test_usual_aliases_and_merge_keys_still_load(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "base: &base {model: openai/x, api_key: sk-a}\n"
        "model_list:\n"
        "  - {model_name: a, litellm_params: {<<: *base, temperature: 0.5}}\n"
        "  - {model_name: b, litellm_params: *base}\n"
    )
    config = load_config(path, {}, serving=False)
    assert [routes[0].deployment.params for routes in config.models.values()] == [{"temperature": 0.5}, {}]


def test_a_directory_or_an_oversized_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, {})
    assert caught.value.message.startswith(f"cannot read config file {tmp_path}")
    error = failure(tmp_path, b"# " + b"x" * (16 * 1024 * 1024) + b"\n")
    assert "is larger than 16 MiB" in error.message


@pytest.mark.parametrize(
    ("content", "path"),
    [
        (b"general_settings: {max_request_size_mb: .inf}\n", "general_settings.max_request_size_mb"),
        (b"general_settings: {shutdown_grace_seconds: .inf}\n", "general_settings.shutdown_grace_seconds"),
        (b'mcp_servers: {a: {command: ls, cwd: "x\\0y"}}\n', "mcp_servers.a.cwd"),
        (b'mcp_servers: {a: {command: "l\\0s"}}\n', "mcp_servers.a.command"),
    ],
)
def test_values_that_would_crash_later_are_config_errors_at_their_path(
    tmp_path: Path, content: bytes, path: str
) -> None:
    assert failure(tmp_path, content).path == path
