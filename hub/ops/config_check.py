"""`toolhub check-config` strictness: unknown top-level keys and likely typos are errors, with "did you mean".

`Config.ignored` lists every key Toolhub read but does not implement. Of those, a key that is one edit or two away
from a key Toolhub knows in the same section (`model_lsit`, `master_kye`) is a typo; a top-level key that neither
Toolhub nor LiteLLM knows is a mistake. Keys LiteLLM knows but Toolhub does not implement stay "ignored", so a
file shared with a LiteLLM proxy keeps working; `--allow-unknown` turns every problem back into an ignored key.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from pydantic import BaseModel

from hub.config.schema import (
    REQUEST_DEFAULT_PARAMS,
    ConfigFile,
    GeneralSettings,
    LiteLLMParams,
    LiteLLMSettings,
    ModelListEntry,
    RouterSettings,
)
from hub.mcp.config import McpServerSpec

# Top-level sections of LiteLLM's proxy config that Toolhub does not read.
LITELLM_TOP_LEVEL = frozenset(
    """callback_settings guardrails credential_list files_settings finetune_settings assistant_settings include
    vector_store_registry search_tools mcp_aliases prompts pass_through_endpoints""".split()
)
# Keys LiteLLM reads in a section that look close to one Toolhub knows: never called a typo.
LITELLM_NEAR_MISSES = frozenset("api_version num_retries max_budget budget_duration".split())

_SECTIONS: list[tuple[re.Pattern[str], type[BaseModel], frozenset[str]]] = [
    (re.compile(r"^general_settings\.([^.]+)$"), GeneralSettings, frozenset()),
    (re.compile(r"^litellm_settings\.([^.]+)$"), LiteLLMSettings, frozenset()),
    (re.compile(r"^router_settings\.([^.]+)$"), RouterSettings, frozenset()),
    (re.compile(r"^model_list\[\d+\]\.([^.]+)$"), ModelListEntry, frozenset()),
    (re.compile(r"^model_list\[\d+\]\.litellm_params\.([^.]+)$"), LiteLLMParams, REQUEST_DEFAULT_PARAMS),
    (re.compile(r"^mcp_servers\.[^.]+\.([^.]+)$"), McpServerSpec, frozenset()),
    (re.compile(r"^([^.\[]+)$"), ConfigFile, frozenset()),
]


@dataclass(frozen=True, slots=True)
class KeyProblem:
    """An ignored key that `check-config` refuses without `--allow-unknown`."""

    path: str
    message: str


def key_problems(ignored: tuple[str, ...]) -> list[KeyProblem]:
    """The typos and unknown top-level keys among `Config.ignored` paths, in file order."""
    problems = (_problem(path) for path in ignored)
    return [p for p in problems if p is not None]


def did_you_mean(path: str) -> str | None:
    """The known key an ignored key is probably a typo of, if any."""
    for pattern, section, extra in _SECTIONS:
        match = pattern.match(path)
        if match is None:
            continue
        key = match[1]
        known = [*section.model_fields, *extra]
        if key in known or key in LITELLM_NEAR_MISSES:
            return None
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.8)
        return close[0] if close else None
    return None


def _problem(path: str) -> KeyProblem | None:
    guess = did_you_mean(path)
    if guess is not None:
        return KeyProblem(path, f"unknown key; did you mean {guess!r}?")
    if "." not in path and "[" not in path and path not in LITELLM_TOP_LEVEL:
        sections = ", ".join(ConfigFile.model_fields)
        return KeyProblem(path, f"unknown top-level key (Toolhub reads {sections})")
    return None
