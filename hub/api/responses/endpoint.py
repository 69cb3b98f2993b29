"""`POST /v1/responses`: a Responses request served through the chat pipeline (`run_chat`) and translated back."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from hub.accounts.auth import Principal
from hub.api import sse
from hub.api.locations import Locations
from hub.api.responses import approval, include, objects, passthrough, stored, upstream
from hub.api.responses.approval import Approvals
from hub.api.responses.events import StreamTranslator
from hub.api.responses.mcp import McpReport, reports_tools
from hub.api.responses.objects import JSON
from hub.api.responses.request import check, hosted_tools, locations, namespaces, to_chat
from hub.api.responses.stored import input_items
from hub.cache.controls import parse_controls
from hub.errors import HubError, json_response
from hub.gateway.chat import run_chat
from hub.gateway.requests import check_chat_request, read_json_body
from hub.loop.run import RoundFailed
from hub.loop.tools import REPORT_OUTPUT
from hub.router.classify import classify
from hub.state import authenticate, hub_state
from providers.base import ProviderError

KEPT_HEADERS = ("content-length", "content-type")


class _Turn:
    """One Responses request on its way through the chat path: what it continues and what it will store."""

    def __init__(self, request: Request, principal: Principal, body: JSON) -> None:
        self.request, self.principal, self.body = request, principal, body
        self.earlier: list[Any] = []
        """Input items of the responses this one continues (their inputs and outputs), for `input_items`."""
        self.history: list[JSON] = []
        """The conversation so far as chat messages, without instructions."""
        self.asked: set[str] = set()
        """Ids of the `mcp_approval_request` items of the response this one continues."""
        self.approved: list[JSON] = []
        self.conversation: list[JSON] = []
        self.where = locations()
        """Where the chat body's messages came from, for errors that name them."""
        self.items: list[Any] = []
        """The input items this response will be stored with (the earlier ones, then this request's)."""
        self.spaces: dict[str, str] = {}
        """Function name -> its `namespace` tool (`namespaces`)."""

    async def chat_body(self) -> JSON:
        """The chat body: earlier turns, answered approvals, this input; hub tools that need approval swapped out."""
        self.body = await stored.with_references(self.request, self.principal, self.body)
        approval.check(self.body)
        if (previous := self.body.get("previous_response_id")) is not None:
            row = await stored.load(self.request, self.principal, str(previous), "previous_response_id")
            self.earlier, self.history = [*row.input_items, *row.response["output"]], row.messages
            self.asked = approval.requested(row.response["output"])
        self._locate(previous)
        chat = check_chat_request(to_chat(self.body, self.history, self.where))  # before any approved tool runs
        if hub_state(self.request).extras.get("cache") is not None:
            parse_controls(chat.get("cache"))  # run_chat's cache refuses malformed ones too, but after the tools ran
        # what the answer is built and stored with, taken from the checked request now: nothing read from it may
        # fail once the upstream answered (and was paid)
        self.items, self.spaces = [*self.earlier, *input_items(self.body.get("input"))], namespaces(self.body)
        tool_messages, self.approved = await approval.answer(self.request, self.principal, self.body, self.history,
                                                             self.asked)  # fmt: skip
        if tool_messages:
            self.where = locations()
            self._locate(previous, len(tool_messages))
            chat = check_chat_request(to_chat(self.body, [*self.history, *tool_messages], self.where))
        has_instructions = self.body.get("instructions") is not None
        self.conversation = chat["messages"][1:] if has_instructions else chat["messages"]
        return chat

    def _locate(self, previous: Any, added: int = 0) -> None:
        """Name the chat messages no field of this request holds: the conversation stored as `previous`, then
        `added` messages of the gateway's (approved hub tools' calls and results); `instructions` come first."""
        start = 1 if self.body.get("instructions") is not None else 0
        end = start + len(self.history)
        if previous is not None:
            self.where.stored(range(start, end), str(previous))
        self.where.added(range(end, end + added))

    async def save(self, final: JSON, turn: JSON | None = None) -> None:
        await stored.save(self.request, self.principal, final, self.items, [*self.conversation], turn)


async def create_response(request: Request) -> Response:
    state = hub_state(request)
    started = time.perf_counter()
    principal = await authenticate(request)
    this = _Turn(request, principal, check(await read_json_body(request, state.config.max_request_bytes)))
    if (forwarded := await passthrough.forward(request, principal, this.body, started)) is not None:
        return forwarded  # a deployment that serves /responses itself
    try:
        return await _translated(this, started)
    except (HubError, ProviderError) as exc:
        this.where.mapped(exc)  # an error about the chat body names the client's items
        raise


async def _translated(this: _Turn, started: float) -> Response:
    """Serve the request through the chat path and translate the answer back."""
    request, principal = this.request, this.principal
    chat = await this.chat_body()
    approvals = await Approvals.offer(request, principal, chat)
    hub_tools = reports_tools(request, chat)
    if hub_tools:
        REPORT_OUTPUT.set(True)  # this request's task only: the loop's record then carries each tool's output
    response, dropped = objects.shell(this.body), hosted_tools(this.body)
    answer = await _answer(this, chat, started, this.body.get("truncation") == "auto", hub_tools)
    if answer.status_code != 200:
        return answer  # an error already in OpenAI's shape, or a client that went away
    waiting = approvals.tools.values() if approvals is not None else ()
    report = McpReport.of(request, principal, chat, waiting, this.items)  # as run_chat planned, once servers are up
    if dropped:  # OpenAI's hosted tools, which only OpenAI runs
        answer.headers["x-toolhub-dropped-tools"] = ",".join(dropped)
    if chat.get("stream"):
        return _streamed(this, answer, response, report, approvals)
    return await _completed(this, answer, response, report, approvals)


def _streamed(
    this: _Turn, answer: Response, response: JSON, report: McpReport | None, approvals: Approvals | None
) -> Response:
    translator = StreamTranslator(response, report, approvals, this.approved, include.included(this.body),
                                  this.spaces)  # fmt: skip

    async def save(final: JSON) -> None:
        await this.save(final, stored.assistant_message({"output": [*final["output"], *translator.asked]}))

    return TranslatedStream(answer, translator, save, this.where)


async def _completed(
    this: _Turn, answer: Response, response: JSON, report: McpReport | None, approvals: Approvals | None
) -> Response:
    completion = orjson.loads(answer.body)
    before = [*report.list_items(), *report.call_items(completion.get("toolhub"))] if report else []
    objects.from_completion(response, completion, [*this.approved, *before], include.included(this.body))
    for item in response["output"] if this.spaces else ():
        if item["type"] == "function_call" and (namespace := this.spaces.get(str(item["name"]))):
            item["namespace"] = namespace
    turn = stored.assistant_message(response)
    if approvals is not None:
        approvals.requests(response)
    await this.save(response, turn)
    headers = {k: v for k, v in answer.headers.items() if k not in KEPT_HEADERS}
    return json_response(response, headers=headers)


async def _answer(this: _Turn, chat: JSON, started: float, auto: bool, hub_tools: bool) -> Response:
    """`run_chat`; with `truncation: "auto"`, again without the oldest turns while the upstream finds the
    conversation too long (`MAX_TRUNCATIONS` calls in all), but never after a hub tool ran: it would run again."""
    tries = 1
    while True:
        try:
            return await run_chat(this.request, this.principal, {**chat}, started)
        except ProviderError as exc:
            retry = auto and tries < include.MAX_TRUNCATIONS and _before_hub_tools(exc, hub_tools)
            shorter = include.truncated(chat["messages"]) if retry else None
            if shorter is None:
                raise
            this.where.follow(chat["messages"], shorter)
            chat, tries = {**chat, "messages": shorter}, tries + 1


def _before_hub_tools(exc: ProviderError, hub_tools: bool) -> bool:
    """Whether `exc` is a context-window refusal that came before any hub tool ran. The tool loop's errors say
    (`RoundFailed.hub_tools_ran`); another error of a request that may run hub tools counts as after them."""
    ran = exc.hub_tools_ran if isinstance(exc, RoundFailed) else hub_tools
    return classify(exc) == "context_window" and not ran


class TranslatedStream(Response):
    """Runs the chat path's SSE response and rewrites its events as Responses events on their way out.

    The chat response stays in charge of disconnects, keep-alives and accounting; this only changes the bytes.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        inner: Response,
        translator: StreamTranslator,
        on_done: Callable[[JSON], Awaitable[None]],
        where: Locations | None = None,
    ) -> None:
        self.inner = inner
        self.where = where or Locations()
        """Where the chat body's messages came from: a failure after `run_chat` (a tool loop round's) names them."""
        self.translator = translator
        self.on_done: Callable[[JSON], Awaitable[None]] | None = on_done
        self.status_code = 200
        self.background = None
        self.raw_headers = inner.raw_headers
        self.frames = sse.Frames()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refused: list[Message] = []
        """The start and body of an answer refused before its first event (an error in OpenAI's shape)."""

        async def relay(message: Message) -> None:
            if message["type"] == "http.response.start":
                if message["status"] != 200:
                    refused.append(message)
                    return  # sent with its body, once that names the client's items
                await send(message)
                await send({"type": "http.response.body", "body": self.translator.start(), "more_body": True})
            elif refused and message["type"] == "http.response.body":
                refused.append(message)
                if not message.get("more_body", False):
                    await self._refusal(refused, send)
            elif message["type"] != "http.response.body":
                await send(message)
            else:
                await self._body(message, send)

        await self.inner(scope, receive, relay)

    async def _refusal(self, messages: list[Message], send: Send) -> None:
        """The error as the non-streamed path answers it: its `param` and message name the client's items."""
        start, body = messages[0], b"".join(m.get("body", b"") for m in messages[1:])
        with contextlib.suppress(ValueError):
            body = orjson.dumps(self.where.body(orjson.loads(body)))
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        await send({**start, "headers": [*headers, (b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})

    async def _body(self, message: Message, send: Send) -> None:
        more = bool(message.get("more_body", False))
        out = b"".join(self._translate(frame) for frame in self.frames.feed(message.get("body", b"")))
        if not more:
            out += self.translator.done()  # an end without [DONE]: close what was opened all the same
        if self.translator.ended and self.on_done is not None:
            on_done, self.on_done = self.on_done, None
            if self.translator.response["status"] != "failed":
                await on_done(self.translator.response)  # stored before the client reads `completed`
        if out or not more:
            await send({"type": "http.response.body", "body": out, "more_body": more})

    def _translate(self, frame: bytes) -> bytes:
        kind, data = sse.read(frame)
        if kind == "done":
            return self.translator.done()
        if kind != "data":
            return frame + b"\n\n"  # SSE comments (keep-alives) pass unchanged
        return self.translator.failed(self.where.body(data)) if sse.is_error(data) else self.translator.chunk(data)


ROUTES = [
    Route("/v1/responses", create_response, methods=["POST"]),
    Route("/responses", create_response, methods=["POST"]),
    Route("/v1/responses/{response_id}", stored.get_response, methods=["GET"]),
    Route("/v1/responses/{response_id}", upstream.delete_response, methods=["DELETE"]),
    Route("/v1/responses/{response_id}/input_items", stored.list_input_items, methods=["GET"]),
]
