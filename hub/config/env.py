"""`os.environ/NAME` references in the config: resolved once, at load, with each unset one recorded by its path.

An unset variable is not an error here: the model or MCP server that needs it is served as unavailable (its requests
name the variable). A reference that names no variable (`os.environ/`) is a mistake in the file, refused at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hub.config.errors import ConfigError

ENV_PREFIX = "os.environ/"


def resolve_env(node: Any, environ: Mapping[str, str], path: str, missing: dict[str, str]) -> Any:
    """`node` with every `os.environ/NAME` string replaced by the variable's value, or by None when it is unset or
    empty (then `missing[path] = NAME`).

    Raises:
        ConfigError: a reference names no variable.
    """
    if isinstance(node, str) and node.startswith(ENV_PREFIX):
        name = node[len(ENV_PREFIX) :]
        if not name.strip():
            raise ConfigError(path, f"{node!r} names no environment variable: write os.environ/NAME")
        value = environ.get(name)
        if value is None or value == "":
            missing[path] = name
            return None
        return value
    if isinstance(node, dict):
        return {k: resolve_env(v, environ, join(path, str(k)), missing) for k, v in node.items()}  # pyright: ignore[reportUnknownVariableType]
    if isinstance(node, list):
        return [resolve_env(v, environ, f"{path}[{i}]", missing) for i, v in enumerate(node)]  # pyright: ignore[reportUnknownVariableType]
    return node


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def missing_under(missing: Mapping[str, str], prefix: str) -> tuple[str, ...]:
    """The unset variables referenced at `prefix` or below it."""
    return tuple(sorted({name for p, name in missing.items() if p == prefix or p.startswith(prefix + ".")}))
