"""The tool loop without streaming: call the model, run its hub tool calls, feed results back, repeat.

Rounds end when the model answers without tool calls, or at `max_rounds` with a clear final message. When a round
asks for a client tool, the loop ends and those calls go back to the client in OpenAI's shape
(`finish_reason: "tool_calls"`). Hub calls made in that same turn are not run and are removed from the returned
message: the client can only answer the calls it sees, and the model asks again on the next turn if it still needs
them. The hub rounds before that turn are kept (`hub.loop.memory`) and restored when the client sends its results.

The answer's `content` is the text of every round, rounds separated by a blank line (`ROUND_BREAK`), exactly what the
streamed loop sends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from hub.accounts.auth import Principal
from hub.accounts.usage import estimated_usage
from hub.loop.memory import hub_rounds
from hub.loop.paths import E, Shifts
from hub.loop.plan import JSON, LoopPlan, ToolHub
from hub.loop.tools import DEFAULT_MAX_RESULT_CHARS, ToolRun, run_calls, tool_messages
from hub.loop.trace import FIELD as TRACE_FIELD, TraceMode, calls_text, results_text, trace_mode
from hub.ops import tracing
from providers.base import ChatRequest, Provider, ProviderError


class RoundFailed(ProviderError):
    """A model call of the tool loop failed: the provider's error with every field as the provider set it (so the
    same answer, accounting and handlers), plus what only the hub knows, whether hub tools ran before it. The
    Responses API retries a shortened conversation only when none had (hub/api/responses/endpoint.py): a retry starts
    the loop over and would run them again. The provider's error is the `__cause__`."""

    def __init__(self, error: ProviderError, *, hub_tools_ran: bool) -> None:
        super().__init__(error.message, status_code=error.status_code, provider=error.provider)
        vars(self).update(vars(error))  # fields a provider's own subclass adds come along too
        self.args = error.args
        self.hub_tools_ran = hub_tools_ran


@dataclass(frozen=True, slots=True)
class LoopSettings:
    max_rounds: int = 10
    max_result_chars: int = DEFAULT_MAX_RESULT_CHARS
    keepalive_seconds: float = 10.0
    trace: TraceMode = "none"
    """The alias's `tool_loop_trace` (hub.loop.trace); a request's own field overrides it."""


def _ignore(value: Any) -> None:
    return None


def _nothing() -> None:
    return None


@dataclass(frozen=True, slots=True)
class LoopObserver:
    """Told of each round's usage and tool runs as they happen, so that accounting survives a loop that fails or
    is abandoned part-way (the gateway's usage record, budgets and rate limits)."""

    usage: Callable[[JSON], None] = _ignore
    runs: Callable[[list[ToolRun]], None] = _ignore
    next_round: Callable[[], None] = _nothing
    """Called before every round after the first; may raise (e.g. RateLimited when the key's budget ran out)."""
    estimated: Callable[[], None] = _nothing
    """Called when a round cut before its upstream reported usage is charged an estimate (`estimated_usage`), so
    the request's record can say its usage is estimated."""


@dataclass
class LoopState:
    """What the loop has done so far: the conversation it built, summed usage and the tools it ran."""

    messages: list[JSON]
    observer: LoopObserver = field(default_factory=LoopObserver)
    usage: dict[str, Any] = field(default_factory=dict[str, Any])
    runs: list[ToolRun] = field(default_factory=list[ToolRun])
    rounds: int = 0
    texts: list[str] = field(default_factory=list[str])
    """The non-empty text of each round so far."""
    start: int = 0
    """How many messages came with the request (hub rounds restored included): the loop's own come after."""
    trace: list[str] = field(default_factory=list[str])
    """What `tool_loop_trace: reasoning` adds to the answer's reasoning: each round's calls and results."""
    restored: list[range] = field(default_factory=list[range])
    """Where the hub rounds of earlier turns were put back among the request's messages (`hub.loop.memory`)."""

    @classmethod
    def begin(cls, chat: ChatRequest, plan: LoopPlan, observer: LoopObserver | None) -> LoopState:
        """The state before the first round, with hub rounds of earlier turns put back (`hub.loop.memory`)."""
        messages = list(chat.body["messages"])
        if plan.provider is None:  # the routed deployment's tool limit (hub.catalog.meta.CLIENT_LIMITS)
            plan.provider = chat.deployment.provider
        restored: list[range] = []
        if plan.memory is not None and len(plan.memory):
            messages, restored = plan.memory.restore_at(messages, plan.owner)
        return cls(messages=messages, observer=observer or LoopObserver(), start=len(messages), restored=restored)

    def located(self, error: E) -> E:
        """`error` naming the request's messages by their index there, and the gateway's (restored hub rounds, this
        turn's rounds) as the gateway's: a round's body holds both (`hub.loop.paths`)."""
        return Shifts(self.restored, self.start).located(error)

    def add_text(self, text: str | None) -> None:
        if text:
            self.texts.append(text)

    def text(self) -> str | None:
        """Every round's text, as the client gets it."""
        return ROUND_BREAK.join(self.texts) or None

    def keep_hub_rounds(self, plan: LoopPlan, client_calls: list[JSON], own: str | None) -> None:
        """The loop ends with client calls: keep this turn's hub rounds for when the conversation comes back."""
        if plan.memory is not None and len(self.messages) > self.start:
            rounds = hub_rounds(plan.owner, self.messages[self.start :], self.text(), own)
            plan.memory.remember([call.get("id") or "" for call in client_calls], rounds)

    def add_usage(self, usage: JSON | None) -> None:
        """Add one model call's usage (once per round: the last usage an upstream reported for it)."""
        if usage:
            self.observer.usage(usage)  # first: it refuses unreadable counts (a 502) before they are summed
            _add_counts(self.usage, usage)

    def add_runs(self, runs: list[ToolRun]) -> None:
        """Keep a round's runs and tell the observer; `run_calls` calls it also for a round its loop's cancellation
        cut short, so an abandoned request still counts the calls it made."""
        self.runs += runs
        self.observer.runs(runs)

    def record(self, stopped: str | None = None) -> JSON:
        """The extra top-level `toolhub` field of the answer."""
        out: JSON = {"rounds": self.rounds, "tool_calls": [run.public() for run in self.runs]}
        if stopped:
            out["stopped"] = stopped
        return out


def _add_counts(total: dict[str, Any], usage: dict[str, Any]) -> None:
    for key, value in usage.items():
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int | float):
            total[key] = total.get(key, 0) + value
        elif isinstance(value, dict):
            _add_counts(total.setdefault(key, {}), value)  # pyright: ignore[reportUnknownArgumentType]


def round_body(body: JSON, plan: LoopPlan, state: LoopState) -> JSON:
    """The request for the next round: all tools offered; a forced tool_choice only applies to the first round."""
    out = {**body, "messages": state.messages, "tools": plan.offered()}
    out.pop(TRACE_FIELD, None)  # the gateway's, never the upstream's
    if state.rounds > 0 and out.get("tool_choice") not in (None, "auto", "none"):
        out["tool_choice"] = "auto"
    return out


def split_calls(calls: list[JSON], plan: LoopPlan) -> tuple[list[JSON], list[JSON]]:
    """(calls the gateway answers: hub tools, and hub-namespaced tools it cannot run; calls for the client)."""
    kinds = [plan.kind((c.get("function") or {}).get("name") or "") for c in calls]
    mine = [c for c, kind in zip(calls, kinds, strict=True) if kind != "client"]
    theirs = [c for c, kind in zip(calls, kinds, strict=True) if kind == "client"]
    return mine, theirs


def assistant_turn(message: JSON, calls: list[JSON]) -> JSON:
    """The assistant message to append to the conversation, with the calls the gateway ran."""
    turn: JSON = {"role": "assistant", "content": message.get("content"), "tool_calls": calls}
    for extra in ("reasoning_content", "thinking_blocks"):
        if message.get(extra):
            turn[extra] = message[extra]
    return turn


STOPPED_TEXT = "Toolhub stopped the tool loop after {n} rounds without a final answer from the model."
ROUND_BREAK = "\n\n"
"""Between the texts of two rounds, in both modes: each round's text reads as its own paragraph."""


async def complete_with_tools(
    provider: Provider,
    chat: ChatRequest,
    plan: LoopPlan,
    hub: ToolHub,
    principal: Principal,
    settings: LoopSettings,
    observer: LoopObserver | None = None,
) -> JSON:
    """Run the loop to the end; returns one OpenAI `chat.completion` with summed usage and a `toolhub` record."""
    state = LoopState.begin(chat, plan, observer)
    mode = trace_mode(chat.body, settings.trace)
    completion: JSON = {}
    while state.rounds < settings.max_rounds:
        tracing.next_round(state.rounds + 1)
        if state.rounds:
            state.observer.next_round()
        request = ChatRequest(  # every round notes what it dropped in the one list the answer's header names
            body=round_body(chat.body, plan, state),
            deployment=chat.deployment,
            request_id=chat.request_id,
            dropped=chat.dropped,
        )
        try:
            completion = await provider.complete(request)
        except ProviderError as exc:  # hub/api/responses/endpoint.py: truncation retries only before any hub tool
            raise state.located(RoundFailed(exc, hub_tools_ran=state.rounds > 0)) from exc
        except anyio.get_cancelled_exc_class():  # the client left (or the shutdown): the upstream bills the prompt
            state.observer.estimated()
            state.add_usage(estimated_usage(request.body["messages"]))
            raise
        state.rounds += 1
        state.add_usage(completion.get("usage"))
        message: JSON = completion["choices"][0]["message"]
        mine, theirs = split_calls(message.get("tool_calls") or [], plan)
        own = message.get("content")
        state.add_text(own)
        if theirs or not mine:
            message["content"] = state.text()
            if mine:
                message["tool_calls"] = theirs
            if theirs:
                state.keep_hub_rounds(plan, theirs, own)
            return _finish(completion, state)
        state.messages.append(assistant_turn(message, mine))
        runs = await run_calls(mine, plan, hub, principal, state.rounds, settings.max_result_chars, chat.request_id,
                               state.add_runs)  # fmt: skip
        state.messages += tool_messages(runs)
        if mode == "content":
            state.add_text(calls_text(mine) + results_text(runs))
        elif mode == "reasoning":
            state.trace.append(calls_text(mine) + results_text(runs) + TRACE_BREAK)
    state.add_text(STOPPED_TEXT.format(n=settings.max_rounds))
    choice = completion["choices"][0]
    choice["message"] = {"role": "assistant", "content": state.text()}
    choice["finish_reason"] = "stop"
    return _finish(completion, state, stopped="max_tool_rounds")


TRACE_BREAK = "\n\n"
"""After each round's trace in the reasoning: what follows starts its own paragraph."""


def _finish(completion: JSON, state: LoopState, stopped: str | None = None) -> JSON:
    if state.trace:
        message = completion["choices"][0]["message"]
        message["reasoning_content"] = "".join(state.trace) + (message.get("reasoning_content") or "")
    if state.usage:
        completion["usage"] = state.usage
    completion["toolhub"] = state.record(stopped)
    return completion
