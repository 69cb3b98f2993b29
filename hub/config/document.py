"""A config file read into its YAML document, or a `ConfigError` naming the file (and the line when known).

Start, `check-config` and a reload of a running gateway read the file here, so that nothing about a file can end in
anything but a `ConfigError`: a reload would otherwise take the running gateway down with it. Before PyYAML builds
the document, one pass over its events (iterative, unlike PyYAML's recursive composer) refuses what would exhaust
the stack or the memory later:

- nesting deeper than `MAX_DEPTH` (PyYAML's composer recurses twice a level: ~500 levels reach Python's limit);
- an alias inside the node its anchor names (`a: &x [*x]`): a document that contains itself;
- aliases that expand to more than `MAX_VALUES` values (a "billion laughs" file: every walk of the document, env
  resolution and validation, visits each alias as often as it is used).

A value PyYAML cannot convert (`2024-13-45`, `!!float abc`) raises ValueError and the like inside PyYAML; `_Loader`
turns those into YAML errors at the value's line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import Node, ScalarNode

from hub.config.errors import ConfigError

MAX_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 100
"""Nested mappings and lists, the document's top level included; configs need fewer than 10."""
MAX_VALUES = 1_000_000
"""Values (keys included) once every alias is expanded; a config with a thousand models has some 20,000."""


def read_document(path: Path) -> Any:
    """The YAML document in the file at `path` (None for an empty file).

    Raises:
        ConfigError: the file cannot be read, is not UTF-8, is not YAML, or is nested or aliased past the limits.
    """
    text = _text(path, _bytes(path))
    try:
        _check_shape(text, path)
        return yaml.load(text, Loader=_Loader)  # a SafeLoader
    except yaml.MarkedYAMLError as exc:
        raise ConfigError("", _marked(path, exc)) from exc
    except yaml.reader.ReaderError as exc:  # a character YAML does not take: its place is an offset in `text`
        line, column = text.count("\n", 0, exc.position) + 1, exc.position - text.rfind("\n", 0, exc.position)
        raise ConfigError("", f"{path} is not valid YAML at line {line}, column {column}: YAML does not allow the "
                              f"character #x{exc.character:04x}") from exc  # fmt: skip
    except ConfigError:
        raise
    except Exception as exc:  # PyYAML's own failures (YAMLError) and any it did not foresee
        raise ConfigError("", f"{path} is not valid YAML: {type(exc).__name__}: {_one_line(str(exc))}") from exc


def _bytes(path: Path) -> bytes:
    try:
        with path.open("rb") as file:
            data = file.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError("", f"cannot read config file {path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_BYTES:
        raise ConfigError("", f"{path} is larger than {MAX_BYTES // (1024 * 1024)} MiB: not a config file")
    return data


def _text(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - data.rfind(b"\n", 0, exc.start)
        raise ConfigError("", f"{path} is not UTF-8 text: byte 0x{data[exc.start]:02x} on line {line}, column "
                              f"{column} (save the file as UTF-8)") from exc  # fmt: skip


class _Open:
    """A mapping or list whose end the event pass has not reached: its anchor and the values in it so far."""

    __slots__ = ("anchor", "values")

    def __init__(self, anchor: str | None) -> None:
        self.anchor = anchor
        self.values = 1


def _check_shape(text: str, path: Path) -> None:
    """Refuse deep nesting, self-containing aliases and alias expansion past `MAX_VALUES` (see the module doc)."""
    open_: list[_Open] = []
    sizes: dict[str, int] = {}  # values in each anchored node, its aliases expanded
    top = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        where = f"{path}, line {event.start_mark.line + 1}, column {event.start_mark.column + 1}"
        if isinstance(event, yaml.CollectionStartEvent):
            if len(open_) >= MAX_DEPTH:
                raise ConfigError("", f"{where}: nested more than {MAX_DEPTH} levels deep")
            open_.append(_Open(event.anchor))
            continue
        if isinstance(event, yaml.CollectionEndEvent):
            node = open_.pop()
            anchor, values = node.anchor, node.values
        elif isinstance(event, yaml.AliasEvent):
            anchor = None
            if any(node.anchor == event.anchor for node in open_):
                raise ConfigError("", f"{where}: the alias *{event.anchor} is inside the node it names (the "
                                      "document would contain itself)")  # fmt: skip
            values = sizes.get(event.anchor or "", 1)
        elif isinstance(event, yaml.ScalarEvent):
            anchor, values = event.anchor, 1
        else:  # stream and document start and end
            continue
        if anchor is not None:
            sizes[anchor] = values
        if open_:
            open_[-1].values += values
        else:
            top += values
        if (open_[-1].values if open_ else top) > MAX_VALUES:
            raise ConfigError("", f"{where}: its aliases expand to more than {MAX_VALUES} values")


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader; a value it fails to convert is a YAML error at that value's line, not a ValueError."""

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)  # pyright: ignore[reportUnknownMemberType]
        except (yaml.YAMLError, RecursionError):
            raise
        except Exception as exc:
            kind = node.tag.rsplit(":", 1)[-1]
            what = f"{node.value!r} as a {kind}" if isinstance(node, ScalarNode) else f"this {kind}"
            problem = f"cannot read {what}: {exc}"
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from exc


def _marked(path: Path, exc: yaml.MarkedYAMLError) -> str:
    """One line: the file, the line and column, what is wrong and what PyYAML was reading."""
    mark = exc.problem_mark or exc.context_mark
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    context = f" ({exc.context})" if exc.context else ""
    return f"{path} is not valid YAML{where}: {_one_line(exc.problem or '')}{context}"


def _one_line(text: str) -> str:
    return " ".join(text.split())
