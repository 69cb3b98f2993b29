"""One request's way through the router: a Provider-shaped object that retries, cools down and falls back.

`RoutedCall.complete` / `.stream` pick a deployment of the group for each attempt and set `ChatRequest.deployment`
to it, so the tool loop's every round goes through the router too. A retry or a fallback happens only before the
first byte: a stream is retried or falls back only until its first chunk arrived; a failure after that ends it
(and is not counted against the deployment: after the first chunk the router is out of the way, see `_Stream`).
Client errors (a 4xx that is not a context-window or content-policy refusal) are never retried nor fallen back.
A fallback group the caller's key may not use is skipped, whether the config or the request names it (`_chain`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from hub.ops.tracing import spans as tracing
from hub.router.classify import MAX_RETRY_AFTER, classify, client_retry_headers, retry_after
from hub.router.config import ErrorKind
from hub.router.groups import Group, Slot
from providers.base import JSON, ChatRequest, Deployment, ProviderError

if TYPE_CHECKING:
    from hub.router.router import Router

_COUNTED: frozenset[ErrorKind] = frozenset({"rate_limit", "timeout", "server"})
_FAST = frozenset({"upstream_unreachable", "upstream_timeout"})
MAX_BACKOFF = 8.0
Attempt = Callable[[Slot, ChatRequest], Awaitable[Any]]
"""One attempt of a call that is not a chat completion (embeddings), on `request.deployment` of the slot the router
picked: `RoutedCall.run`. It raises ProviderError as providers do."""


@dataclass(frozen=True, slots=True)
class Options:
    """What a request body may ask of the router (LiteLLM's per-request keys)."""

    fallbacks: tuple[str, ...] | None = None
    num_retries: int | None = None
    timeout: float | None = None
    mock_testing_fallbacks: bool = False


NO_OPTIONS = Options()


class _Cooling(Exception):
    def __init__(self, group: Group, seconds: float) -> None:
        super().__init__(group.alias)
        self.group = group
        self.seconds = seconds


class RoutedCall:
    """Implements `providers.base.Provider` for one request; `headers()` tells what the router did."""

    __slots__ = ("router", "group", "first", "options", "may_use", "started", "answered", "answered_group",
                 "retries", "fallbacks", "record")  # fmt: skip
    name = "router"

    def __init__(
        self, router: Router, group: Group, first: Slot | None, options: Options = NO_OPTIONS,
        may_use: Callable[[str], bool] | None = None,
    ) -> None:  # fmt: skip
        self.router = router
        self.group = group
        self.first = first
        self.options = options
        self.may_use = may_use
        """The caller's key's check of a model group (`Principal.may_use_model`); None: every group."""
        self.started = time.monotonic()
        self.answered: Slot | None = None
        self.answered_group: Group | None = None
        self.retries = 0
        self.fallbacks = 0
        self.record: Any = None
        """The request's `UsageRecord`, if any: it gets the model and provider of the deployment that answered."""

    async def complete(self, request: ChatRequest) -> JSON:
        try:
            return await self._in_group(self.group, request, False, self._take_first())
        except (ProviderError, _Cooling) as exc:
            return await self._fall_back(request, False, exc)

    def stream(self, request: ChatRequest) -> AsyncIterator[JSON]:
        return _Stream(self, request)

    async def run(self, request: ChatRequest, attempt: Attempt, serves: Callable[[Slot], bool] | None = None) -> Any:
        """Another kind of upstream call (e.g. embeddings: hub/api/embeddings.py), routed as `complete` is. Fallback
        groups with no deployment that `serves` the call are skipped, so the primary's error stands."""
        try:
            return await self._in_group(self.group, request, attempt, self._take_first())
        except (ProviderError, _Cooling) as exc:
            return await self._fall_back(request, attempt, exc, serves)

    async def open_stream(self, request: ChatRequest) -> tuple[JSON | None, AsyncIterator[JSON]]:
        """The first chunk and the rest of a stream, retried and fallen back until the first chunk arrived."""
        try:
            return await self._in_group(self.group, request, True, self._take_first())
        except (ProviderError, _Cooling) as exc:
            return await self._fall_back(request, True, exc)

    def headers(self) -> dict[str, str]:
        """LiteLLM's `x-litellm-*` response headers for what the router did."""
        slot = self.answered
        if slot is not None and not self.retries and not self.fallbacks:
            return slot.headers
        out = {
            "x-litellm-model-group": (self.answered_group or self.group).alias,
            "x-litellm-attempted-retries": str(self.retries),
            "x-litellm-attempted-fallbacks": str(self.fallbacks),
        }
        if slot is not None:
            out["x-litellm-model-api-base"] = slot.shown_base
            out["x-litellm-model-id"] = slot.id
        return out

    async def _fall_back(
        self, request: ChatRequest, stream: bool | Attempt, error: ProviderError | _Cooling,
        serves: Callable[[Slot], bool] | None = None,
    ) -> Any:  # fmt: skip
        """The primary group failed with `error`: try its fallback groups in turn, or raise the final error."""
        kind = classify(error) if isinstance(error, ProviderError) else "server"
        if kind == "client":
            raise self._final(error)  # pyright: ignore[reportArgumentType]
        cooling: list[_Cooling] = [error] if isinstance(error, _Cooling) else []
        for alias in self._chain(kind):
            group = self.router.groups.get(alias)
            if group is None or (serves is not None and not any(serves(slot) for slot in group.usable)):
                continue
            self.fallbacks += 1
            try:
                return await self._in_group(group, request, stream, None)
            except _Cooling as exc:
                cooling.append(exc)
            except ProviderError as exc:
                error = exc
                if classify(exc) == "client":
                    break
        if isinstance(error, ProviderError):
            raise self._final(error)
        raise self._final(self._all_cooling(cooling), upstream=False)

    def _take_first(self) -> Slot | None:
        first, self.first = self.first, None
        return first

    def _chain(self, kind: ErrorKind) -> tuple[str, ...]:
        """The groups to fall back to: `_named_chain` less those the caller's key may not use (a fallback answers as
        its group, at its price: as if the key had asked for it)."""
        chain = self._named_chain(kind)
        may_use = self.may_use
        return chain if may_use is None else tuple(alias for alias in chain if may_use(alias))

    def _named_chain(self, kind: ErrorKind) -> tuple[str, ...]:
        """The fallback groups the request names, else the config's, whoever calls."""
        chain = self.options.fallbacks
        return self.router.policy.chain(self.group.alias, kind) if chain is None else chain

    async def _in_group(self, group: Group, request: ChatRequest, stream: bool | Attempt, slot: Slot | None) -> Any:
        """Attempts on the deployments of one group, with its retries and backoff (`stream`: a chat stream or not, or
        the attempt of another kind of call)."""
        cooldowns = self.router.cooldowns
        if self.options.mock_testing_fallbacks and group is self.group:
            raise _mock_error(group)
        tried: list[Slot] = []
        attempt = 0
        trace = tracing.current()  # None when tracing is off: the attempts below then cost one check each
        while True:
            current = slot or group.pick(cooldowns, tried) or group.pick(cooldowns)
            slot = None
            if current is None:
                raise _Cooling(group, cooldowns.remaining(s.id for s in group.usable) or 0.0)
            request.deployment = self._deployment(current)
            current.inflight += 1
            started = time.perf_counter() if group.timed else 0.0
            try:
                if trace is not None:  # the attempt in its span, with its traceparent sent upstream
                    send = functools.partial(_send, current, request, stream)
                    result = await trace.attempt(send, request, self._span(group, current, attempt), stream is True)
                elif stream is True:
                    result = await _open_stream(current, request)
                elif stream is False:
                    result = await current.provider.complete(request)  # pyright: ignore[reportOptionalMemberAccess]
                else:
                    result = await stream(current, request)
            except ProviderError as exc:
                kind = self._failed(group, current, exc)
                if attempt >= self.router.policy.retries(kind, self.options.num_retries, group.alias):
                    raise
                tried.append(current)
                wait = self._wait(exc, attempt, group, tried)
                if wait is None or ((deadline := self._deadline()) is not None and time.monotonic() + wait >= deadline):
                    raise
                attempt += 1
                self.retries += 1
                current.retries += 1
                if wait > 0:
                    await anyio.sleep(wait)
                continue
            finally:
                current.inflight -= 1
            if started:
                current.observe(time.perf_counter() - started)
            if group.counted:  # usage-based routing: requests, and tokens when the answer says (not for streams)
                current.count(0 if isinstance(result, tuple) else _tokens(result), requests=1)
            current.successes += 1
            self.answered, self.answered_group = current, group
            if group is not self.group:
                current.fallbacks += 1
            if (record := self.record) is not None:
                record.upstream_model = current.route.deployment.model
                record.provider = current.route.deployment.provider
                record.priced_route = current.route
                record.api_base = current.shown_base
                record.answered_group = group.alias if group is not self.group else ""
                record.retries, record.fallbacks = self.retries, self.fallbacks
            return result

    def _span(self, group: Group, slot: Slot, attempt: int) -> dict[str, Any]:
        """What a trace shows of an attempt besides the GenAI attributes: where the router sent it, and why."""
        return {"toolhub.model_group": group.alias, "toolhub.deployment_id": slot.id, "toolhub.retry": attempt,
                "toolhub.fallback": group is not self.group}  # fmt: skip

    def _failed(self, group: Group, slot: Slot, exc: ProviderError) -> ErrorKind:
        """Count a failure of `slot` (cooling it when due) and return its kind."""
        kind = classify(exc)
        if kind not in _COUNTED:
            return kind
        slot.failures += 1
        # with nothing to fail over to, cooling only refuses; whether there is depends on the group, not the caller
        if len(group.usable) > 1 or self._named_chain(kind):
            immediate = exc.code in _FAST
            self.router.cooldowns.failed(slot.id, kind, retry_after=retry_after(exc), immediate=immediate)
        return kind

    def _wait(self, exc: ProviderError, attempt: int, group: Group, tried: list[Slot]) -> float | None:
        """No wait when another deployment can take the retry; else retry-after or jittered exponential backoff.

        None: no retry in this group now, because the upstream asked for longer than `MAX_RETRY_AFTER` (or for no
        sane delay): sleeping that long inside the request would hang it, so the fallbacks answer at once instead.
        """
        if group.pick(self.router.cooldowns, tried) is not None:
            return 0.0
        policy = self.router.policy
        asked = retry_after(exc)
        if asked is not None:
            if asked > MAX_RETRY_AFTER:
                return None
            return max(min(asked * (1 + 0.25 * random.random()), MAX_RETRY_AFTER), policy.retry_after)
        backoff = min(MAX_BACKOFF, 0.5 * 2**attempt)
        return max(random.uniform(backoff / 2, backoff), policy.retry_after)

    def _deadline(self) -> float | None:
        """Retries (and their backoff) start only before this; each fallback group still gets its attempt."""
        seconds = self.options.timeout or self.router.policy.timeout
        return None if seconds is None else self.started + seconds

    def _deployment(self, slot: Slot) -> Deployment:
        """The deployment for an attempt, with the request's own `timeout` when it is shorter."""
        deployment = slot.route.deployment
        seconds = self.options.timeout
        if seconds is None or (seconds >= deployment.timeout and seconds >= deployment.read_timeout(True)):
            return deployment
        stream_timeout = min(deployment.read_timeout(True), seconds)
        return dataclasses.replace(deployment, timeout=min(deployment.timeout, seconds), stream_timeout=stream_timeout)

    def _final(self, error: ProviderError, upstream: bool = True) -> ProviderError:
        """The error the caller gets, with the router's headers; an `upstream` one's retry-after made sane (a client
        must not wait for hours, nor take a negative delay, on an upstream's word: `client_retry_headers`)."""
        headers = client_retry_headers(error.headers) if upstream else error.headers
        error.headers = {**headers, **self.headers()}
        if (record := self.record) is not None:
            record.retries, record.fallbacks = self.retries, self.fallbacks
        return error

    def _all_cooling(self, cooling: list[_Cooling]) -> ProviderError:
        seconds = max(1, math.ceil(min(c.seconds for c in cooling)))
        names = ", ".join(f"'{c.group.alias}'" for c in cooling)
        return ProviderError(
            f"No deployment of model group {names} can take the request: all are cooling down after failures. "
            f"The first is back in {seconds} s.",
            status_code=503, provider="router", type="service_unavailable", code="model_group_cooling",
            headers={"retry-after": str(seconds), "x-should-retry": "true"},
        )  # fmt: skip


async def _send(slot: Slot, request: ChatRequest, stream: bool | Attempt) -> Any:
    if stream is True:
        return await _open_stream(slot, request)
    if stream is False:
        return await slot.provider.complete(request)  # pyright: ignore[reportOptionalMemberAccess]
    return await stream(slot, request)


async def _open_stream(slot: Slot, request: ChatRequest) -> tuple[JSON | None, AsyncIterator[JSON]]:
    """Start a stream and wait for its first chunk (a failure up to here can still be retried or fall back)."""
    chunks = aiter(slot.provider.stream(request))  # pyright: ignore[reportOptionalMemberAccess]
    try:
        return await anext(chunks, None), chunks
    except BaseException:
        with anyio.CancelScope(shield=True):
            await chunks.aclose()  # pyright: ignore[reportAttributeAccessIssue]
        raise


def _tokens(completion: JSON) -> int:
    usage = completion.get("usage") or {}
    return int(usage.get("total_tokens") or 0)


def _mock_error(group: Group) -> ProviderError:
    return ProviderError(
        f"This is a mock exception for model group '{group.alias}', to trigger a fallback (mock_testing_fallbacks).",
        status_code=500, provider="router", type="upstream_error", code="mock_testing_fallbacks",
        upstream_status=500, retryable=True,
    )  # fmt: skip


class _Stream:
    """`RoutedCall.stream()`: routes on the first `__anext__`; `async for` afterwards iterates the upstream's own
    stream (no wrapper per chunk: the gateway's `aiter()` after the first chunk returns it)."""

    __slots__ = ("call", "request", "chunks")

    def __init__(self, call: RoutedCall, request: ChatRequest) -> None:
        self.call = call
        self.request = request
        self.chunks: AsyncIterator[JSON] | None = None

    def __aiter__(self) -> AsyncIterator[JSON]:
        return self if self.chunks is None else self.chunks

    async def __anext__(self) -> JSON:
        if self.chunks is not None:
            return await anext(self.chunks)
        first, self.chunks = await self.call.open_stream(self.request)
        if first is None:
            raise StopAsyncIteration
        return first

    async def aclose(self) -> None:
        if self.chunks is not None:
            await self.chunks.aclose()  # pyright: ignore[reportAttributeAccessIssue]
