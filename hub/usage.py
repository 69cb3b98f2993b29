"""What the gateway records about each request, and the seam where records leave the request path."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(slots=True)
class UsageRecord:
    """One chat request's accounting, built on the request path and handed to a `UsageSink`."""

    request_id: str
    key_id: str | None
    model_alias: str
    upstream_model: str
    provider: str
    status_code: int
    stream: bool
    latency_ms: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    error: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])

    def add_usage(self, usage: dict[str, Any] | None) -> None:
        """Take counts from an OpenAI `usage` object (prompt includes cached, completion includes reasoning)."""
        if not usage:
            return
        self.prompt_tokens += int(usage.get("prompt_tokens") or 0)
        self.completion_tokens += int(usage.get("completion_tokens") or 0)
        self.cached_tokens += int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
        self.reasoning_tokens += int((usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0)


class UsageSink(Protocol):
    def record(self, record: UsageRecord) -> None:
        """Take a record without blocking; storing it happens off the request path."""
        ...


class NullSink:
    """Keeps nothing: used when no store is configured."""

    def record(self, record: UsageRecord) -> None:
        return None
