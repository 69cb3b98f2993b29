"""`ToolIndex`: deterministic relevance ranking of tools for `hub__search_tools`.

BM25F (Robertson and Zaragoza, "The Probabilistic Relevance Framework: BM25 and Beyond", 2009): each field's term
counts are weighted (a word in the tool's own name counts 3, in its server's name 2, in an argument name 1.5, in the
description 1, in an argument's description 0.5), summed, and scored with one BM25 saturation and length norm
(`k1` 1.2, `b` 0.75). All weights and lengths are multiples of 0.5, exact in floating point, so an index updated in
place ranks exactly as one built from scratch. Ties are broken by name. A query equal to a tool's name (exposed or
original) ranks that tool first.

The index is updated in place (`sync`): a tool whose name, server, description and arguments are unchanged costs a
dict lookup and an identity check; only new or changed tools are tokenized again.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from hub.catalog.text import terms

K1 = 1.2
B = 0.75
NAME_WEIGHT = 3.0
SERVER_WEIGHT = 2.0
ARGUMENT_WEIGHT = 1.5
DESCRIPTION_WEIGHT = 1.0
ARGUMENT_DESCRIPTION_WEIGHT = 0.5
EXACT_NAME_BONUS = 1000.0


class Searchable(Protocol):
    """A tool as the hub lists it (`hub.mcp.catalog.ToolInfo`; the tool loop calls it `HubTool`)."""

    @property
    def name(self) -> str: ...
    @property
    def server(self) -> str: ...
    @property
    def original_name(self) -> str: ...
    @property
    def description(self) -> str | None: ...
    @property
    def input_schema(self) -> Mapping[str, Any]: ...


@dataclass(slots=True)
class _Doc:
    fingerprint: tuple[Any, ...]
    source: object
    weights: dict[str, float]
    length: float


@dataclass(frozen=True, slots=True)
class Hit:
    name: str
    score: float


def arguments(schema: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(name, description) of each top-level argument of an input schema, in schema order."""
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return []
    found: list[tuple[str, str]] = []
    for name, spec in properties.items():  # pyright: ignore[reportUnknownVariableType]
        description = spec.get("description") if isinstance(spec, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        found.append((str(name), description if isinstance(description, str) else ""))  # pyright: ignore[reportUnknownArgumentType]
    return found


def _fingerprint(tool: Searchable) -> tuple[Any, ...]:
    return (tool.server, tool.original_name, tool.description or "", tuple(arguments(tool.input_schema)))


def _weights(fingerprint: tuple[Any, ...]) -> dict[str, float]:
    server, original, description, args = fingerprint
    weights: dict[str, float] = {}
    fields = [(original, NAME_WEIGHT), (server, SERVER_WEIGHT), (description, DESCRIPTION_WEIGHT)]
    for name, text in args:
        fields += [(name, ARGUMENT_WEIGHT), (text, ARGUMENT_DESCRIPTION_WEIGHT)]
    for text, weight in fields:
        for term in terms(text):
            weights[term] = weights.get(term, 0.0) + weight
    return weights


class ToolIndex:
    """An in-memory BM25F index over tools, keyed by exposed name."""

    def __init__(self) -> None:
        self._docs: dict[str, _Doc] = {}
        self._postings: dict[str, dict[str, float]] = {}
        self._total = 0.0
        self._norms: dict[str, float] | None = None
        self._originals: dict[str, set[str]] = {}
        self._source: object = None

    def __len__(self) -> int:
        return len(self._docs)

    def __contains__(self, name: object) -> bool:
        return name in self._docs

    def sync(self, tools: Sequence[Searchable], *, prune: bool = True) -> None:
        """Make the index hold `tools`: new and changed ones are (re)indexed, and with `prune` missing ones dropped.

        Passing the same object again (the hub's catalog tuple, rebuilt only when an upstream changes) is free.
        """
        if prune and tools is self._source:
            return
        docs = self._docs
        for tool in tools:
            doc = docs.get(tool.name)
            if doc is None or doc.source is not tool:  # inline: this loop runs over every visible tool per call
                self._put(tool)
        if prune:
            seen = {tool.name for tool in tools}
            for name in [n for n in docs if n not in seen]:
                self._remove(name)
            self._source = tools

    def _put(self, tool: Searchable) -> None:
        doc = self._docs.get(tool.name)
        if doc is not None and doc.source is tool:
            return
        fingerprint = _fingerprint(tool)
        if doc is not None and doc.fingerprint == fingerprint:
            doc.source = tool
            return
        if doc is not None:
            self._remove(tool.name)
        weights = _weights(fingerprint)
        doc = _Doc(fingerprint, tool, weights, sum(weights.values()))
        self._docs[tool.name] = doc
        self._total += doc.length
        for term, weight in weights.items():
            self._postings.setdefault(term, {})[tool.name] = weight
        self._originals.setdefault(tool.original_name.lower(), set()).add(tool.name)
        self._norms = None

    def _remove(self, name: str) -> None:
        doc = self._docs.pop(name)
        self._total -= doc.length
        for term in doc.weights:
            posting = self._postings[term]
            del posting[name]
            if not posting:
                del self._postings[term]
        original = str(doc.fingerprint[1]).lower()
        named = self._originals.get(original, set())
        named.discard(name)
        if not named:
            self._originals.pop(original, None)
        self._norms = None

    def _length_norms(self) -> dict[str, float]:
        if self._norms is None:
            average = self._total / len(self._docs) if self._docs else 1.0
            self._norms = {n: K1 * (1 - B + B * d.length / (average or 1.0)) for n, d in self._docs.items()}
        return self._norms

    def search(self, query: str, limit: int = 10, within: Container[str] | None = None) -> list[Hit]:
        """The best `limit` tools for `query`, best first; only names in `within` when given (the caller's scope)."""
        if limit <= 0 or not self._docs:
            return []
        norms = self._length_norms()
        count = len(self._docs)
        scores: dict[str, float] = {}
        for term in dict.fromkeys(terms(query)):
            posting = self._postings.get(term)
            if not posting:
                continue
            idf = math.log(1 + (count - len(posting) + 0.5) / (len(posting) + 0.5))
            for name, weight in posting.items():
                scores[name] = scores.get(name, 0.0) + idf * weight * (K1 + 1) / (weight + norms[name])
        self._exact_match(query.strip(), scores)
        if within is not None:
            scores = {name: score for name, score in scores.items() if name in within}
        best = heapq.nsmallest(limit, scores.items(), key=lambda item: (-item[1], item[0]))
        return [Hit(name, round(score, 4)) for name, score in best]

    def _exact_match(self, query: str, scores: dict[str, float]) -> None:
        names = {query} if query in self._docs else self._originals.get(query.lower(), set())
        for name in names:
            scores[name] = scores.get(name, 0.0) + EXACT_NAME_BONUS
