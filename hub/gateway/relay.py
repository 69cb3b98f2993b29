"""One upstream stream relayed to its client as SSE, with what accounting needs kept from it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from hub.accounts.usage import UsageRecord, estimated_usage, usage_counts
from hub.cache.service import Lookup
from hub.errors import HubError, stream_error_event
from hub.gateway import sse
from hub.ops import shutdown
from providers.base import JSON, ProviderError

CLIENT_GONE = 499
CLIENT_GONE_MESSAGE = "client disconnected"
SHUT_DOWN = 503
"""The status of a request the shutdown ended (hub/ops/shutdown.py): it was not served, as a 503 says."""
logger = logging.getLogger("toolhub")
Done = Callable[[int, str | None], None]


def cut_short(exc: BaseException) -> tuple[int, str]:
    """(status, error) of a request cancelled before it ended: the shutdown's 503 when the shutdown ended it
    (hub/ops/shutdown.py), else the client's 499. Every path that accounts a cut request tells the two apart here."""
    return (SHUT_DOWN, shutdown.MESSAGE) if shutdown.is_shutdown(exc) else (CLIENT_GONE, CLIENT_GONE_MESSAGE)


def noting_estimate(error: str | None, estimated: bool) -> str | None:
    """The recorded error of a request whose usage (some of it) had to be estimated: it says so."""
    return f"{error}; usage estimated" if estimated and error else error


class Relay:
    """Turns chunks into SSE events for one stream, and keeps what accounting needs from them."""

    def __init__(self, body: JSON, record: UsageRecord, *, count_usage: bool, lookup: Lookup | None = None) -> None:
        self.lookup = lookup
        self.gathered = None if lookup is None else lookup.gatherer()
        """A cacheable stream is gathered into the whole answer, stored when it completes."""
        self.include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self.record = record
        self.count_usage = count_usage
        self.usage: JSON | None = None
        """The last usage the upstream reported: some servers repeat a growing total on every chunk."""
        self.text_chars = 0
        self.body = body
        self.finished = False

    def event(self, chunk: JSON) -> bytes:
        if self.gathered is not None:
            self.gathered.add(chunk)
        usage = chunk.get("usage") if self.include_usage else chunk.pop("usage", None)
        choices = chunk.get("choices")
        if usage:
            self.usage = usage
            if not self.include_usage and not choices:
                return b""
        elif choices:
            content = (choices[0].get("delta") or {}).get("content")
            if content and isinstance(content, str):  # a list of parts (Mistral's thinking) is not counted
                self.text_chars += len(content)
        return sse.event(chunk)

    async def relay(self, first: JSON | None, chunks: AsyncIterator[JSON], done: Done) -> AsyncIterator[bytes]:
        """Relay chunks as SSE the moment they arrive; an error after the start becomes a final error event.

        The request is accounted before the last event ([DONE] or the error), so a client that got [DONE] has its
        usage row, and in a `finally`, so the key's budget hold is released whatever happened.
        """
        status, error, failure, cut = 200, None, None, False
        try:
            if first is not None:
                yield self.event(first)
                async for chunk in chunks:
                    if event := self.event(chunk):
                        yield event
            if self.count_usage and self.usage is not None:
                usage_counts(self.usage, self.record.provider)  # unreadable: a bad answer, neither stored nor 200
            if self.lookup is not None and self.gathered is not None:
                await self.lookup.save(self.gathered.completion())  # None (not stored) for a cut stream
        except (ProviderError, HubError) as exc:
            status, error, failure = exc.status_code, exc.message, exc
        except (anyio.get_cancelled_exc_class(), GeneratorExit) as exc:  # GeneratorExit: closed (RelayResponse)
            (status, error), cut = cut_short(exc), True
            raise
        except Exception as exc:  # a bug (the gateway's or a provider's): still one record and a final error event
            logger.exception("Relaying a stream failed")
            status, error = 500, f"{type(exc).__name__}: {exc}"
            failure = HubError("The gateway failed while relaying this stream.", code="internal_error")
        finally:
            await self.finish(chunks, done, status, error, cut=cut)
        yield sse.DONE if failure is None else stream_error_event(failure)

    async def finish(
        self, chunks: AsyncIterator[JSON], done: Done, status: int, error: str | None, *, cut: bool
    ) -> None:
        """Close the upstream's chunks and account the stream (`cut`: the client or the shutdown ended it)."""
        self.finished = True
        try:
            with anyio.CancelScope(shield=True):
                await chunks.aclose()  # pyright: ignore[reportAttributeAccessIssue]
        finally:
            done(status, noting_estimate(error, self.account(cut=cut)))

    def account(self, *, cut: bool) -> bool:
        """Add the stream's usage to the record (never raises); True when it had to be estimated. `cut`: the client
        left or the shutdown ended the stream, whose usage is then estimated when the upstream sent none."""
        if not self.count_usage:
            return False
        if self.usage is not None:
            try:
                self.record.add_usage(self.usage)
                return False
            except ProviderError:
                pass  # unreadable (the stream ended with that error): the text it sent is estimated below
        elif not cut:
            return False
        self.record.add_usage(estimated_usage(self.body.get("messages") or [], self.text_chars))
        return True


class RelayResponse(StreamingResponse):
    """A relayed stream's response. Starlette leaves a body it stopped reading, or never began to (a client that left
    before the first byte), to the garbage collector: this closes it, and accounts a relay that never ran as a client
    gone, so the request has its record and its key's budget hold is released."""

    def __init__(self, relay: Relay, first: JSON | None, chunks: AsyncIterator[JSON], done: Done,
                 headers: dict[str, str]) -> None:  # fmt: skip
        self.relay, self.chunks, self.done = relay, chunks, done
        self.relayed = relay.relay(first, chunks, done)
        super().__init__(self.relayed, media_type="text/event-stream", headers=headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self.relayed.aclose()  # pyright: ignore[reportAttributeAccessIssue]
                if not self.relay.finished:
                    await self.relay.finish(self.chunks, self.done, CLIENT_GONE, CLIENT_GONE_MESSAGE, cut=True)
