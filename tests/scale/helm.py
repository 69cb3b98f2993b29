"""Render the Helm chart in deploy/helm/ without the helm binary (none installs offline here).

A small interpreter of the Go-template subset the chart uses: `{{ }}` with `-` trimming, `.Values/.Release/.Chart`
paths, pipelines, `define`/`include`, `if`/`else`/`end` with `not`, and Helm's `toYaml`, `nindent`, `indent`,
`quote`, `printf`, `trunc`, `trimSuffix`, `sha256sum`, `default`. Anything else is an error, so a template that
strays from the subset fails the test instead of rendering wrong.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_ACTION = re.compile(r"{{(-?)\s*(.*?)\s*(-?)}}", re.S)


@dataclass
class _Node:
    kind: str  # text, expr, if, define
    value: str = ""
    body: list[_Node] = field(default_factory=list["_Node"])
    orelse: list[_Node] = field(default_factory=list["_Node"])


def _tokens(source: str) -> list[tuple[str, str]]:
    """("text", s) and ("action", s) with Go's `{{-`/`-}}` whitespace trimming applied."""
    out: list[tuple[str, str]] = []
    pos = 0
    for match in _ACTION.finditer(source):
        text = source[pos : match.start()]
        if match[1]:
            text = text.rstrip()
        out.append(("text", text))
        out.append(("action", match[2]))
        pos = match.end()
        if match[3]:
            while pos < len(source) and source[pos].isspace():
                pos += 1
    out.append(("text", source[pos:]))
    return out


def _parse(tokens: list[tuple[str, str]], pos: int = 0) -> tuple[list[_Node], int, str]:
    nodes: list[_Node] = []
    while pos < len(tokens):
        kind, value = tokens[pos]
        pos += 1
        if kind == "text":
            nodes.append(_Node("text", value))
        elif value in ("end", "else"):
            return nodes, pos, value
        elif value.startswith(("if ", "define ")):
            node = _Node(value.split()[0], value.split(" ", 1)[1])
            node.body, pos, closer = _parse(tokens, pos)
            if closer == "else":
                node.orelse, pos, closer = _parse(tokens, pos)
            nodes.append(node)
        elif not value.startswith("/*"):
            nodes.append(_Node("expr", value))
    return nodes, pos, ""


class Chart:
    """A chart directory rendered with its values (optionally overridden)."""

    def __init__(self, path: Path, release: str = "toolhub") -> None:
        self.path = path
        meta = yaml.safe_load((path / "Chart.yaml").read_text())
        self.defines: dict[str, list[_Node]] = {}
        chart = {"Name": meta["name"], "Version": meta["version"], "AppVersion": meta["appVersion"]}
        self.context = {"Release": {"Name": release, "Namespace": "default", "Service": "Helm"}, "Chart": chart}
        self.values: dict[str, Any] = yaml.safe_load((path / "values.yaml").read_text())
        for helper in sorted((path / "templates").glob("_*.tpl")):
            self._collect(_parse(_tokens(helper.read_text()))[0])

    def _collect(self, nodes: list[_Node]) -> None:
        for node in nodes:
            if node.kind == "define":
                self.defines[shlex.split(node.value)[0]] = node.body

    def render(self, overrides: dict[str, Any] | None = None) -> dict[str, str]:
        """Template file name -> rendered text (helpers excluded)."""
        dot = {**self.context, "Values": _merge(self.values, overrides or {})}
        rendered: dict[str, str] = {}
        for template in sorted((self.path / "templates").glob("*.yaml")):
            rendered[template.name] = self._run(_parse(_tokens(template.read_text()))[0], dot)
        return rendered

    def documents(self, overrides: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        return [doc for text in self.render(overrides).values() for doc in yaml.safe_load_all(text) if doc]

    def _run(self, nodes: list[_Node], dot: Any) -> str:
        out: list[str] = []
        for node in nodes:
            if node.kind == "text":
                out.append(node.value)
            elif node.kind == "expr":
                out.append(_show(self._pipeline(node.value, dot)))
            elif node.kind == "if":
                out.append(self._run(node.body if _truthy(self._pipeline(node.value, dot)) else node.orelse, dot))
        return "".join(out)

    def _pipeline(self, text: str, dot: Any) -> Any:
        value: Any = None
        for i, command in enumerate(text.split(" | ")):
            words = shlex.split(command, posix=False)
            args = [self._arg(w, dot) for w in words[1:]] + ([] if i == 0 else [value])
            value = self._call(words[0], args, dot) if _is_function(words[0]) else self._arg(words[0], dot)
        return value

    def _arg(self, word: str, dot: Any) -> Any:
        if word.startswith('"'):
            return word[1:-1]
        if word.isdigit():
            return int(word)
        if word == ".":
            return dot
        if word.startswith("."):
            value = dot
            for part in word[1:].split("."):
                value = value.get(part) if isinstance(value, dict) else None
            return value
        raise ValueError(f"unsupported template argument {word!r}")

    def _call(self, name: str, args: list[Any], dot: Any) -> Any:
        if name == "include":
            return self._run(self.defines[args[0]], args[1])
        return _FUNCTIONS[name](*args)


def _is_function(word: str) -> bool:
    if word in _FUNCTIONS or word == "include":
        return True
    if word.startswith(('"', ".")) or word.isdigit():
        return False
    raise ValueError(f"unsupported template function {word!r}")


def _to_yaml(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=False, sort_keys=True).rstrip("\n")


def _indent(n: int, text: str) -> str:
    return "\n".join(" " * n + line if line else line for line in str(text).split("\n"))


_FUNCTIONS: dict[str, Any] = {
    "toYaml": _to_yaml,
    "nindent": lambda n, text: "\n" + _indent(n, text),
    "indent": _indent,
    "quote": lambda value: '"' + str(value).replace('"', '\\"') + '"',
    "printf": lambda fmt, *args: fmt.replace("%s", "{}").format(*args),
    "trunc": lambda n, text: str(text)[:n],
    "trimSuffix": lambda suffix, text: str(text).removesuffix(suffix),
    "sha256sum": lambda text: hashlib.sha256(str(text).encode()).hexdigest(),
    "default": lambda fallback, value=None: value if _truthy(value) else fallback,
    "not": lambda value: not _truthy(value),
}


def _truthy(value: Any) -> bool:
    return bool(value)


def _show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        nested = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = _merge(merged[key], value) if nested else value
    return merged
