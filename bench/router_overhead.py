"""CPU the router adds to a healthy request, in process: resolve + routed call + headers vs the pre-router path.

The pre-router path is what `ModelRouter.resolve` did before hub/router (a round-robin `next()` over the alias's
deployments, a provider lookup, a `Target`) followed by the provider call. The routed path is today's
`ModelRouter.resolve` (with the body, as chat.py calls it), `RoutedCall.complete` and `headers()`. The provider is
a no-op (its stream yields 22 chunks, relayed as hub.gateway.chat does), so only the routing code is measured.
Prints microseconds per request (best of 5 runs).

    python bench/router_overhead.py [--requests 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hub.accounts.auth import MASTER
from hub.config import parse_config
from hub.gateway.routing import ModelRouter
from providers._http import HttpPool
from providers.base import JSON, ChatRequest

ANSWER: JSON = {"choices": [{"message": {"content": "hi"}}]}


class Noop:
    name = "noop"

    async def complete(self, request: ChatRequest) -> JSON:
        return ANSWER

    async def stream(self, request: ChatRequest) -> AsyncIterator[JSON]:
        for _ in range(22):  # 20 chunks, the finish chunk and the usage chunk
            yield ANSWER


async def relay(chunks: AsyncIterator[JSON]) -> None:
    """What hub.gateway.chat does with a stream: the first chunk, then `async for` over the rest, then aclose."""
    chunks = aiter(chunks)
    await anext(chunks, None)
    async for _ in chunks:
        pass
    await chunks.aclose()  # pyright: ignore[reportAttributeAccessIssue]


async def old_path(router: ModelRouter, n: int, stream: bool) -> float:
    cycles = {alias: itertools.cycle(routes) for alias, routes in router.models.items()}
    providers = {"openai": Noop()}
    started = time.perf_counter()
    for _ in range(n):
        body = {"model": "bench", "messages": []}
        route = next(cycles[body["model"]])
        provider = providers[route.deployment.provider]
        chat = ChatRequest(body=body, deployment=route.deployment)
        if stream:
            await relay(provider.stream(chat))
        else:
            await provider.complete(chat)
    return time.perf_counter() - started


async def new_path(router: ModelRouter, n: int, stream: bool) -> float:
    started = time.perf_counter()
    for _ in range(n):
        body = {"model": "bench", "messages": []}
        target = router.resolve(body["model"], MASTER, body)
        chat = ChatRequest(body=body, deployment=target.route.deployment)
        if stream:
            await relay(target.provider.stream(chat))
        else:
            await target.provider.complete(chat)
        target.provider.headers()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--deployments", type=int, default=1)
    args = parser.parse_args()
    raw = {"model_list": [{"model_name": "bench", "litellm_params": {"model": "openai/bench",
                                                                     "api_base": f"http://d{i}/v1"}}
                          for i in range(args.deployments)]}  # fmt: skip
    router = ModelRouter(parse_config(raw, {}).models, HttpPool())
    for group in router.groups.values():
        for slot in group.slots:
            slot.provider = Noop()
    n = args.requests
    for stream in (False, True):
        old = min(asyncio.run(old_path(router, n, stream)) for _ in range(5)) / n * 1e6
        new = min(asyncio.run(new_path(router, n, stream)) for _ in range(5)) / n * 1e6
        print(
            f"{'stream (22 chunks)' if stream else 'non-stream'}, deployments {args.deployments}: pre-router "
            f"{old:.2f} us/request, routed {new:.2f} us/request, added {new - old:.2f} us ({(new - old) / 1000:.4f} ms)"
        )


if __name__ == "__main__":
    main()
