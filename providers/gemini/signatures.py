"""Gemini thought signatures kept on the gateway between turns, keyed by tool-call id.

OpenAI clients send the assistant's tool calls back without Gemini's `thoughtSignature`s, and Gemini 3 refuses a
tool-calling turn whose steps lost them. The provider remembers, per model step, which part carried which signature
and puts each back on exactly that part. When an entry is gone (evicted, expired, another gateway instance, history
from another model) the first function call of the step gets the documented dummy signature instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from providers._cache import TTLCache

DUMMY_SIGNATURE = "c2tpcF90aG91Z2h0X3NpZ25hdHVyZV92YWxpZGF0b3I="
"""base64 of `skip_thought_signature_validator`, the value Google documents for signatures that cannot be recovered."""

_VERSION = re.compile(r"gemini-(\d+)")


@dataclass(frozen=True, slots=True)
class Step:
    """What one model step (one assistant message) carried besides what an OpenAI client keeps."""

    model: str
    calls: Mapping[str, str] = field(default_factory=dict[str, str])
    """OpenAI tool-call id -> the signature on that call's `functionCall` part."""
    upstream_ids: Mapping[str, str] = field(default_factory=dict[str, str])
    """OpenAI tool-call id -> Gemini's own `functionCall.id`, when it could not be used as the OpenAI id."""
    text: str | None = None
    """The signature on the step's text (or thought) part."""


class SignatureStore:
    """A bounded, expiring map from tool-call id to its `Step`; one per provider instance."""

    def __init__(self, max_items: int = 20_000, ttl: float = 6 * 3600.0) -> None:
        self._steps: TTLCache[Step] = TTLCache(max_items=max_items, ttl=ttl)

    def __len__(self) -> int:
        return len(self._steps)

    def remember(self, step: Step, call_ids: list[str]) -> None:
        """Keep `step` under each of its tool-call ids (the client may send back any of them)."""
        if not (step.calls or step.upstream_ids or step.text):
            return
        for call_id in call_ids:
            self._steps.put(call_id, step)

    def lookup(self, call_id: str) -> Step | None:
        return self._steps.get(call_id)


def needs_signatures(model: str) -> bool:
    """Gemini 3 and later validate signatures; 2.x return them but do not require them back."""
    match = _VERSION.search(model)
    return match is None or int(match.group(1)) >= 3
