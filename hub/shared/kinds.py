"""The three kinds of per-conversation state shared between replicas, each with its codec, and the lifespan piece
that opens the shared store (Redis when `redis_url` is set)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, Any

import anyio
import orjson

from hub.accounts.ratelimit import redis_client
from hub.loop.memory import HubRounds, RoundMemory
from hub.loop.plan import MEMORY_KEY
from hub.shared.mirror import Mirror, SharedState, SharedTTLCache
from hub.shared.store import LocalOnly, RedisShared, SharedStore
from providers._cache import TTLCache
from providers.gemini.signatures import SignatureStore, Step

if TYPE_CHECKING:
    from hub.state import HubState

AnthropicTurn = tuple[str, list[dict[str, Any]]]


def _load_turn(data: bytes) -> AnthropicTurn:
    model, blocks = orjson.loads(data)
    if not isinstance(model, str) or not isinstance(blocks, list):
        raise ValueError("not an (upstream model, thinking blocks) pair")
    return model, blocks  # pyright: ignore[reportUnknownVariableType]


def anthropic_thinking(
    store: SharedStore, *, max_items: int = 4096, ttl: float = 3600.0
) -> SharedTTLCache[AnthropicTurn]:
    """For `AnthropicProvider.thinking`: tool-call id -> (upstream model, thinking blocks with their signatures)."""
    return SharedTTLCache("anthropic-thinking", store, dump=orjson.dumps, load=_load_turn, max_items=max_items,
                          ttl=ttl)  # fmt: skip


def _load_step(data: bytes) -> Step:
    fields = orjson.loads(data)
    return Step(fields["model"], fields["calls"], fields["upstream_ids"], fields["text"])


def gemini_signatures(store: SharedStore, *, max_items: int = 20_000, ttl: float = 6 * 3600.0) -> SharedTTLCache[Step]:
    """For `SignatureStore`'s map: tool-call id -> the Gemini `Step` with its thought signatures."""
    return SharedTTLCache("gemini-signatures", store, dump=orjson.dumps, load=_load_step, max_items=max_items,
                          ttl=ttl)  # fmt: skip


def _load_rounds(data: bytes) -> HubRounds:
    fields = orjson.loads(data)
    return HubRounds(fields["owner"], tuple(fields["messages"]), fields["shown"], fields["own"], int(fields["size"]))


def round_memory(memory: RoundMemory, store: SharedStore) -> Mirror[HubRounds]:
    """The tool loop's hub rounds: tool-call id -> `HubRounds` (restored only for the same owner, as locally)."""
    return Mirror("hub-rounds", store, ttl=memory.ttl, dump=orjson.dumps, load=_load_rounds,
                  keep=lambda key, rounds: memory.remember([key], rounds))  # fmt: skip


class SharedSignatures(SignatureStore):
    """A Gemini provider's `SignatureStore` whose steps are shared (`GeminiProvider.signatures` takes it)."""

    def __init__(self, steps: SharedTTLCache[Step]) -> None:
        super().__init__(max_items=1)
        self.steps = steps

    def __len__(self) -> int:
        return len(self.steps)

    def remember(self, step: Step, call_ids: list[str]) -> None:
        if step.calls or step.upstream_ids or step.text:
            for call_id in call_ids:
                self.steps.put(call_id, step)

    def lookup(self, call_id: str) -> Step | None:
        return self.steps.get(call_id)


def share_providers(providers: Iterable[object], shared: SharedState) -> int:
    """Swap the thinking and signature memories of these provider instances for shared ones; how many were."""
    count = 0
    for provider in providers:
        if isinstance(getattr(provider, "thinking", None), TTLCache):
            thinking = anthropic_thinking(shared.store)
            setattr(provider, "thinking", thinking)  # noqa: B010 (any provider with such a memory, not one class)
            shared.add(thinking.mirror)
            count += 1
        elif isinstance(getattr(provider, "signatures", None), SignatureStore):
            steps = gemini_signatures(shared.store)
            setattr(provider, "signatures", SharedSignatures(steps))  # noqa: B010
            shared.add(steps.mirror)
            count += 1
    return count


def shared_extension() -> Callable[[HubState], contextlib.AbstractAsyncContextManager[None]]:
    """The lifespan piece for `create_app`: with `redis_url`, the router's providers and the tool loop's memory
    share their conversation state; `extras["shared"]` is the `SharedState` whose `warm` a request awaits."""

    @contextlib.asynccontextmanager
    async def extension(state: HubState) -> AsyncIterator[None]:
        if not state.config.redis_url:  # nothing to share: no `extras["shared"]`, no cost per request
            yield
            return
        async with shared_state(state.config.redis_url) as shared:
            share_providers({id(s.provider): s.provider for _, s in state.router.slots()}.values(), shared)
            memory = state.extras.get(MEMORY_KEY)
            if memory is None:
                memory = state.extras[MEMORY_KEY] = RoundMemory()
            mirror = round_memory(memory, shared.store)
            memory.on_remember = mirror.publish
            shared.add(mirror)
            state.extras["shared"] = shared
            yield

    return extension


@contextlib.asynccontextmanager
async def shared_state(redis_url: str | None) -> AsyncIterator[SharedState]:
    """A `SharedState` over Redis (its writer running) or, without `redis_url`, over nothing."""
    if not redis_url:
        yield SharedState(LocalOnly())
        return
    client = redis_client(redis_url)
    store = RedisShared(client)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(store.run)
            try:
                yield SharedState(store)
            finally:
                tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await store.flush()
            await client.aclose()
