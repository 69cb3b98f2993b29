"""Words of tool names, descriptions and queries, reduced to comparable search terms.

`get_pullRequest-comments` becomes `get pull request comment`: names are split at `_`, `-`, `.`, `/` and case changes,
everything is lower case, common English endings are stripped (a light stemmer: no dictionary, no download), and a
handful of words that tool authors and users spell differently map to one term (`remove` -> `delete`).
"""

from __future__ import annotations

import functools
import re

_RUN = re.compile(r"[A-Za-z0-9]+")
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
"""`HTTPServerError` -> HTTP, Server, Error; `getPRs` -> get, PRs; digits apart."""

STOPWORDS = frozenset(
    "a an and any are as at be by can do does for from get give has have how i in into is it its me my of on or "
    "please show some that the their them then this to use using want what when which with you your".split()
)
"""Words that say nothing about which tool is meant ("get" and "show" included: nearly every tool reads something)."""

SYNONYMS = {
    "remove": "delete", "erase": "delete", "destroy": "delete", "drop": "delete", "del": "delete",
    "add": "create", "new": "create", "make": "create", "open": "create", "insert": "create", "post": "create",
    "modify": "update", "edit": "update", "change": "update", "patch": "update", "set": "update",
    "find": "search", "lookup": "search", "query": "search", "look": "search",
    "fetch": "read", "retrieve": "read", "view": "read", "download": "read", "load": "read",
    "enumerate": "list", "all": "list",
    "msg": "message", "dm": "message", "chat": "message",
    "pr": "pull", "repo": "repository", "repos": "repository", "ticket": "issue", "bug": "issue",
    "db": "database", "sql": "database", "dir": "directory", "folder": "directory", "doc": "document",
    "calendar": "calendar", "meeting": "event", "appointment": "event", "mail": "email", "e-mail": "email",
    "user": "user", "member": "user", "person": "user", "people": "user", "account": "user",
    "upload": "write", "save": "write", "store": "write",
    "run": "execute", "exec": "execute", "invoke": "execute", "trigger": "execute",
}  # fmt: skip
"""One term for words users and tool authors use for the same thing; applied after stemming, to both sides."""

_ENDINGS = (("ies", "y"), ("sses", "ss"), ("ches", "ch"), ("shes", "sh"), ("xes", "x"), ("ing", ""), ("ed", ""),
            ("es", "e"), ("s", ""))  # fmt: skip


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light stemmer: plural and verb endings off (`issues` -> `issue`, `listing` -> `list`), then `SYNONYMS`."""
    root = word
    if len(word) > 4 and not word.endswith(("ss", "us", "is")):
        for ending, replacement in _ENDINGS:
            if word.endswith(ending) and len(word) - len(ending) >= 3:
                root = word[: len(word) - len(ending)] + replacement
                break
        if root.endswith(("tt", "pp", "gg", "nn", "mm")) and word.endswith(("ing", "ed")):
            root = root[:-1]  # "getting" -> "get", "mapped" -> "map"
    return SYNONYMS.get(root, SYNONYMS.get(word, root))


def words(text: str) -> list[str]:
    """The words of `text`, split at separators and case changes, lower case; a word written in parts
    (`GitHub`, `listIssues`) also as a whole, so that `github` finds it."""
    found: list[str] = []
    for run in _RUN.findall(text):
        parts = _WORD.findall(run)
        found += [p.lower() for p in parts]
        if len(parts) > 1 and not run[:1].isdigit():
            found.append(run.lower())
    return found


def terms(text: str) -> list[str]:
    """Search terms of `text`: `words`, stemmed, without stopwords (one entry per occurrence)."""
    return [s for w in words(text) if w not in STOPWORDS and (s := stem(w)) not in STOPWORDS]
