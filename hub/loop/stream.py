"""The tool loop, streaming: the model's text streams through as it comes, hub tool calls are run between rounds.

The client sees one ordinary OpenAI stream: one id, one role chunk, content (and reasoning) from every round (a
round's text after an earlier round's text starts with `ROUND_BREAK`, so the streamed text equals the non-streamed
`content`), the calls meant for the client (re-indexed from 0), one finish chunk carrying the `toolhub` record, then
usage. Hub tool calls never reach the client: an SSE comment says which tools run (`: toolhub running <names>`),
`tool_loop_trace` shows each call before it runs and its result after (hub.loop.trace), and while they run
`KeepAliveStreamingResponse` sends `: keep-alive` comments so that proxies do not time the stream out. OpenAI clients
ignore comment lines.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from contextvars import ContextVar
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectSendStream
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from hub.accounts.auth import Principal
from hub.accounts.usage import estimated_usage
from hub.errors import HubError, error_response, stream_error_event
from hub.gateway import sse
from hub.gateway.relay import CLIENT_GONE, CLIENT_GONE_MESSAGE, cut_short, noting_estimate
from hub.loop.plan import JSON, LoopPlan, ToolHub
from hub.loop.run import (
    ROUND_BREAK,
    STOPPED_TEXT,
    TRACE_BREAK,
    LoopObserver,
    LoopSettings,
    LoopState,
    assistant_turn,
    round_body,
)
from hub.loop.tools import run_calls, tool_messages
from hub.loop.trace import TraceMode, call_events, calls_text, result_events, results_text, trace_mode
from hub.ops import tracing
from providers.base import ChatRequest, Provider, ProviderError


class RoundStream:
    """One round's stream: forwards client-visible deltas and keeps the hub calls for the gateway to run."""

    def __init__(self, plan: LoopPlan, after_text: bool = False) -> None:
        self.plan = plan
        self.break_due = after_text
        """An earlier round had text: this round's first text starts with `ROUND_BREAK`."""
        self.calls: dict[int, JSON] = {}
        self.client_index: dict[int, int | None] = {}
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.finish: str | None = None
        self.matched: str | None = None
        """The finishing choice's `stop_reason`: the stop string that ended the round (vLLM's field), if one did."""
        self.usage: JSON | None = None
        """The last usage the upstream reported (some servers repeat a growing total on every chunk)."""

    def take_calls(self, deltas: list[JSON]) -> list[JSON]:
        """The deltas the client should see; a call is classified by its name, held back until the name arrives."""
        out: list[JSON] = []
        for delta in deltas:
            upstream = delta.get("index", 0)
            function = delta.get("function") or {}
            call = self.calls.setdefault(
                upstream, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
            )
            call["id"] = call["id"] or delta.get("id") or ""
            call["function"]["name"] += function.get("name") or ""
            call["function"]["arguments"] += function.get("arguments") or ""
            if upstream not in self.client_index:
                if not call["function"]["name"]:
                    continue  # some servers send the id first: wait for the name
                visible = sum(1 for i in self.client_index.values() if i is not None)
                mine = self.plan.kind(call["function"]["name"]) != "client"
                self.client_index[upstream] = None if mine else visible
                if self.client_index[upstream] is not None:  # the client's: everything so far, in one first fragment
                    out.append({"index": self.client_index[upstream], "id": call["id"], "type": "function",
                                "function": dict(call["function"])})  # fmt: skip
                continue
            target = self.client_index[upstream]
            if target is not None:
                out.append({**delta, "index": target})
        return out

    @property
    def hub_calls(self) -> list[JSON]:
        return [self.calls[i] for i, target in self.client_index.items() if target is None]

    @property
    def client_calls(self) -> list[JSON]:
        return [self.calls[i] for i, target in self.client_index.items() if target is not None]

    @property
    def has_client_calls(self) -> bool:
        return any(target is not None for target in self.client_index.values())

    def generated_chars(self) -> int:
        """How much text the upstream generated in this round so far: its content, reasoning and calls."""
        calls = sum(len(c["function"]["name"]) + len(c["function"]["arguments"]) for c in self.calls.values())
        return sum(map(len, self.content)) + sum(map(len, self.reasoning)) + calls

    def text(self, piece: str | None) -> str | None:
        """Keep a piece of this round's text; what the client gets of it."""
        if not piece:
            return piece
        self.content.append(piece)
        if self.break_due:
            self.break_due = False
            return ROUND_BREAK + piece
        return piece


class _Ident:
    """Keeps one id/created/model and one role chunk across every round of the stream."""

    def __init__(self) -> None:
        self.fields: dict[str, Any] | None = None
        self.role_sent = False

    def apply(self, chunk: JSON) -> None:
        if self.fields is None:
            self.fields = {k: chunk.get(k) for k in ("id", "object", "created", "model")}
        chunk.update(self.fields)

    def chunk(self, delta: JSON, finish: str | None = None, matched: str | None = None, **extra: Any) -> JSON:
        """A chunk of one choice; `matched` is the stop string the upstream's finishing choice named (`stop_reason`),
        which /v1/messages answers as `stop_sequence`."""
        choice: JSON = {"index": 0, "delta": delta, "finish_reason": finish}
        if matched is not None:
            choice["stop_reason"] = matched
        return {**self._base(), "choices": [choice], **extra}

    def usage_chunk(self, usage: JSON) -> JSON:
        return {**self._base(), "choices": [], "usage": usage or None}

    def _base(self) -> dict[str, Any]:
        return dict(self.fields or {"object": "chat.completion.chunk"})


async def stream_with_tools(
    provider: Provider,
    chat: ChatRequest,
    plan: LoopPlan,
    hub: ToolHub,
    principal: Principal,
    settings: LoopSettings,
    observer: LoopObserver | None = None,
) -> AsyncIterator[JSON | bytes]:
    """Yield the client's OpenAI chunks (and SSE comment lines) for the whole loop; ends with a usage chunk."""
    state = LoopState.begin(chat, plan, observer)
    mode = trace_mode(chat.body, settings.trace)  # a bad value is a 400, before anything is sent
    ident = _Ident()
    while state.rounds < settings.max_rounds:
        tracing.next_round(state.rounds + 1)
        if state.rounds:
            state.observer.next_round()
        request = ChatRequest(
            body={**round_body(chat.body, plan, state), "stream": True},
            deployment=chat.deployment,
            request_id=chat.request_id,
        )
        current = RoundStream(plan, after_text=bool(state.texts))
        try:
            async with aclosing(provider.stream(request)) as chunks:  # pyright: ignore[reportArgumentType]
                async for chunk in chunks:
                    if (visible := _visible(chunk, current, ident)) is not None:
                        yield visible
        except ProviderError as exc:  # about a message of the round: the request's index, or the gateway's
            state.located(exc)
            raise
        except (anyio.get_cancelled_exc_class(), GeneratorExit):  # the client left, or the shutdown ended it
            if current.usage is None:  # cut before the upstream's usage came: estimated, as the relay does
                current.usage = estimated_usage(request.body["messages"], current.generated_chars())
                state.observer.estimated()
                if (flag := _ESTIMATED.get()) is not None:
                    flag.append(True)
            raise
        finally:
            state.add_usage(current.usage)  # a round that failed or was abandoned still counts what it reported
        state.rounds += 1
        own = "".join(current.content) or None
        state.add_text(own)
        hub_calls = current.hub_calls
        if current.has_client_calls or not hub_calls:
            if current.has_client_calls:
                state.keep_hub_rounds(plan, current.client_calls, own)
                yield ident.chunk({}, "tool_calls", toolhub=state.record())
            else:
                yield ident.chunk({}, current.finish or "stop", current.matched, toolhub=state.record())
            yield ident.usage_chunk(state.usage)
            return
        message = {"content": own, "reasoning_content": "".join(current.reasoning)}
        state.messages.append(assistant_turn(message, hub_calls))
        yield f": toolhub running {' '.join(call['function']['name'] for call in hub_calls)}\n\n".encode()
        if mode != "none":
            before = ROUND_BREAK if mode == "content" and state.texts else "\n\n" if any(current.reasoning) else ""
            yield _traced(ident, mode, before + calls_text(hub_calls), call_events(hub_calls, state.rounds))
        runs = await run_calls(hub_calls, plan, hub, principal, state.rounds, settings.max_result_chars,
                               chat.request_id, state.add_runs)  # fmt: skip
        state.messages += tool_messages(runs)
        if mode != "none":
            after = TRACE_BREAK if mode == "reasoning" else ""
            yield _traced(ident, mode, results_text(runs) + after, result_events(runs))
            if mode == "content":  # the next round's text starts with ROUND_BREAK, as after any text
                state.add_text(calls_text(hub_calls) + results_text(runs))
    stopped = STOPPED_TEXT.format(n=settings.max_rounds)
    yield ident.chunk({"content": ROUND_BREAK + stopped if state.texts else stopped})
    yield ident.chunk({}, "stop", toolhub=state.record("max_tool_rounds"))
    yield ident.usage_chunk(state.usage)


def _traced(ident: _Ident, mode: TraceMode, text: str, events: list[JSON]) -> JSON:
    """A chunk with trace lines (as reasoning or as content) and the same as data in `toolhub_trace`."""
    delta: JSON = {"reasoning_content" if mode == "reasoning" else "content": text}
    if not ident.role_sent:
        delta = {"role": "assistant", **delta}
        ident.role_sent = True
    return ident.chunk(delta, toolhub_trace=events)


def _visible(chunk: JSON, current: RoundStream, ident: _Ident) -> JSON | None:
    """The part of an upstream chunk the client should see, or None."""
    if usage := chunk.pop("usage", None):
        current.usage = usage
    choices = chunk.get("choices") or []
    if not choices:
        return None
    ident.apply(chunk)
    choice = choices[0]
    delta: JSON = choice.get("delta") or {}
    if "role" in delta:
        if ident.role_sent:
            del delta["role"]
        ident.role_sent = True
    if delta.get("tool_calls"):
        forwarded = current.take_calls(delta["tool_calls"])
        if forwarded:
            delta["tool_calls"] = forwarded
        else:
            del delta["tool_calls"]
    if delta.get("content"):
        delta["content"] = current.text(delta["content"])
    current.reasoning.append(delta.get("reasoning_content") or "")
    if choice.get("finish_reason"):
        current.finish = choice["finish_reason"]
        choice["finish_reason"] = None  # the loop decides when the stream finishes, with the matched stop string
        if isinstance(matched := choice.pop("stop_reason", None), str):
            current.matched = matched
    if not delta or delta == {"content": ""}:
        return None
    choice["delta"] = delta
    chunk["choices"] = [choice]
    return chunk


_ESTIMATED: ContextVar[list[bool] | None] = ContextVar("toolhub_loop_estimated", default=None)
"""Set by `KeepAliveStreamingResponse` around its producer: the loop notes there that it estimated a round's usage,
so the record's error says so. The gateway builds the loop's iterator (and may wrap it in the cache's saver), so the
response holds no handle on the loop itself; the producer task inherits this context."""

Encoder = Callable[[JSON], bytes]
Done = Callable[[int, str | None], None]


class KeepAliveStreamingResponse(Response):
    """An SSE response fed by a producer task; sends `: keep-alive` comments when nothing was sent for a while.

    A failure before the first event becomes an ordinary HTTP error response; after it, a final error event.
    A client disconnect cancels the producer (the model call and any running tools).
    """

    media_type = "text/event-stream"

    def __init__(self, items: AsyncIterator[JSON | bytes], encode: Encoder, done: Done, keepalive: float) -> None:
        self.items = items
        self.encode = encode
        self.done = done
        self.keepalive = keepalive
        self.status_code = 200
        self.background = None
        self.init_headers(sse.HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        status, error = CLIENT_GONE, CLIENT_GONE_MESSAGE
        estimated: list[bool] = []
        token = _ESTIMATED.set(estimated)
        try:
            async with anyio.create_task_group() as tg:

                async def watch_disconnect() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    tg.cancel_scope.cancel()

                tg.start_soon(watch_disconnect)
                status, error = await self._respond(scope, receive, send)
                tg.cancel_scope.cancel()
        except anyio.get_cancelled_exc_class() as exc:
            status, error = cut_short(exc)
            raise
        except Exception as exc:  # the loop itself failed (a bug): accounted as the non-streaming path accounts it
            status, error = 500, _described(exc)
            raise
        finally:
            _ESTIMATED.reset(token)
            self.done(status, noting_estimate(error, bool(estimated)))

    async def _respond(self, scope: Scope, receive: Receive, send: Send) -> tuple[int, str | None]:
        sender, receiver = anyio.create_memory_object_stream[bytes | HubError | ProviderError](8)
        outcome: tuple[int, str | None] = (200, None)
        async with anyio.create_task_group() as tg, receiver:
            tg.start_soon(self._produce, sender)
            first = await receiver.receive()
            if isinstance(first, HubError | ProviderError):
                await error_response(first)(scope, receive, send)
                return first.status_code, first.message
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            await send({"type": "http.response.body", "body": first, "more_body": True})
            while True:
                item: bytes | HubError | ProviderError = b": keep-alive\n\n"  # what is sent when nothing came
                with anyio.move_on_after(self.keepalive):
                    try:
                        item = await receiver.receive()
                    except anyio.EndOfStream:
                        break
                if isinstance(item, HubError | ProviderError):
                    outcome = (item.status_code, item.message)
                    item = stream_error_event(item)
                await send({"type": "http.response.body", "body": item, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        return outcome

    async def _produce(self, sender: MemoryObjectSendStream[bytes | HubError | ProviderError]) -> None:
        async with sender:
            try:
                async for chunk in self.items:
                    if data := chunk if isinstance(chunk, bytes) else self.encode(chunk):
                        await sender.send(data)
                await sender.send(sse.DONE)
            except (HubError, ProviderError) as exc:
                await sender.send(exc)
            finally:  # cut while waiting to send: the loop accounts its round now, before `done`, not when collected
                with anyio.CancelScope(shield=True):
                    await self.items.aclose()  # pyright: ignore[reportAttributeAccessIssue]


def _described(exc: BaseException) -> str:
    """`Type: message` of the failure inside the task groups' wrapping (not the stream it ended: `EndOfStream`)."""
    while isinstance(exc, BaseExceptionGroup):
        causes = [e for e in exc.exceptions if not isinstance(e, anyio.EndOfStream)]
        exc = (causes or exc.exceptions)[0]
    return f"{type(exc).__name__}: {exc}"
