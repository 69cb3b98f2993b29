"""Visible hub activity (`tool_loop_trace`): chat apps cannot see the tools the gateway ran, so the loop can tell them.

`none` (the default) says nothing. `reasoning` streams each hub tool call, then a short summary of its result, as
`reasoning_content` deltas, which Open WebUI and other chat apps render as a collapsible "thinking" block; a
non-streamed answer carries the same text in its message's `reasoning_content`. `content` puts the same lines in the
answer's text, as their own paragraph between the rounds' texts (streamed and not alike). The mode comes from the
request body's `tool_loop_trace` field (Open WebUI sends custom parameters as top-level fields) or else the alias's
default; the field is never sent upstream.

Every chunk that carries trace lines also carries them as data in an extra top-level `toolhub_trace` list (events
`tool_call` and `tool_result`), which OpenAI clients ignore and the console's playground draws.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from hub.errors import BadRequest
from hub.loop.tools import ToolRun

JSON = dict[str, Any]
TraceMode = Literal["none", "reasoning", "content"]
MODES: tuple[TraceMode, ...] = ("none", "reasoning", "content")
FIELD = "tool_loop_trace"
ARGUMENT_CHARS = 200
SUMMARY_CHARS = 200
_SPACE = re.compile(r"\s+")


def trace_mode(body: JSON, default: TraceMode) -> TraceMode:
    """The request's `tool_loop_trace`, else `default`.

    Raises:
        BadRequest: the field is set to something else than none, reasoning or content.
    """
    value = body.get(FIELD)
    if value is None:
        return default
    if value not in MODES:
        raise BadRequest(f"'{FIELD}' must be one of none, reasoning, content.", param=FIELD, code="invalid_value")
    return value


def short(text: str, limit: int) -> str:
    """`text` on one line, cut to `limit` characters with an ellipsis."""
    flat = _SPACE.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _name(call: JSON) -> str:
    return (call.get("function") or {}).get("name") or ""


def calls_text(calls: list[JSON]) -> str:
    """One line per call, before they run."""
    lines = [f"- Calling `{_name(c)}` with {short((c.get('function') or {}).get('arguments') or '{}', ARGUMENT_CHARS)}"
             for c in calls]  # fmt: skip
    return "\n".join(lines)


def results_text(runs: list[ToolRun]) -> str:
    """One line per finished call, after the calls' lines (so it starts with a newline)."""
    return "".join(f"\n- `{run.name}` {_outcome(run)} in {run.duration_ms:.0f} ms: {_summary(run)}" for run in runs)


def _outcome(run: ToolRun) -> str:
    return "failed" if run.is_error else "answered"


def _summary(run: ToolRun) -> str:
    return short(run.content.removeprefix("Error: "), SUMMARY_CHARS) or "(nothing)"


def call_events(calls: list[JSON], round_: int) -> list[JSON]:
    return [{"type": "tool_call", "round": round_, "id": c.get("id") or "", "name": _name(c),
             "arguments": (c.get("function") or {}).get("arguments") or "{}"} for c in calls]  # fmt: skip


def result_events(runs: list[ToolRun]) -> list[JSON]:
    return [{"type": "tool_result", "round": run.round, "id": run.id, "name": run.name, "is_error": run.is_error,
             "duration_ms": round(run.duration_ms, 2), "summary": _summary(run),
             "truncated_chars": run.truncated_chars} for run in runs]  # fmt: skip
