"""Tool search over a large catalog: index cost, search latency, and tool-definition tokens per turn.

    python bench/tool_search.py [--copies 10] [--rounds 100]

The catalog is `tests/catalog/synthetic.py` repeated `--copies` times under new server names (10 copies: 5,000 tools
on 500 servers). Measured in this process, on one core:
  build       indexing every tool from scratch (`ToolIndex.sync`)
  resync      syncing the same catalog tuple again (what every catalog read costs) and after one server changed
  search      `ToolIndex.search(query, 8)` over the 30 known queries, `--rounds` times each: p50 / p99
  dispatch    `handle_meta_call("hub__search_tools")` for a caller who may see every tool, on the shared index
              (the pass over the caller's tools that scopes the search included): p50 / p99
  tokens      the tool definitions sent to the model on every turn: every tool as an OpenAI function tool, against
              the four meta-tools. Tokens are APPROXIMATED as len(JSON) / 4 (no tokenizer download here).
  loop        the tool loop's definitions per round (`LoopPlan.offered`), 200 hub tools, `tool_exposure: auto`:
              search mode for an OpenAI model (128 tools at most), every tool for an Anthropic one: p50
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hub.catalog.dispatch import handle_meta_call  # noqa: E402
from hub.catalog.index import ToolIndex  # noqa: E402
from hub.catalog.meta import meta_functions  # noqa: E402
from hub.catalog.service import CatalogService, CatalogSettings  # noqa: E402
from hub.loop.plan import LoopPlan, function_tool  # noqa: E402
from tests.catalog.synthetic import QUERIES, catalog  # noqa: E402


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def _row(name: str, value: str, note: str = "") -> None:
    print(f"| {name:<40} | {value:>18} | {note}")


def _timed(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def _search(index: ToolIndex, rounds: int) -> list[float]:
    samples: list[float] = []
    for _ in range(rounds):
        for query, _ in QUERIES:
            started = time.perf_counter()
            index.search(query, 8)
            samples.append((time.perf_counter() - started) * 1000)
    return samples


async def _dispatch(tools: list[Any], index: ToolIndex, rounds: int) -> list[float]:
    async def never(name: str, arguments: dict[str, Any]) -> Any:
        raise AssertionError(name)

    samples: list[float] = []
    for _ in range(max(1, rounds // 10)):
        for query, _ in QUERIES:
            started = time.perf_counter()
            await handle_meta_call("hub__search_tools", {"query": query}, tools, never, index=index)
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def _tokens(tools: list[Any]) -> int:
    return len(orjson.dumps(tools)) // 4


def _offered(tools: list[Any], provider: str, rounds: int) -> list[float]:
    """`LoopPlan.offered()` per round (µs) with a 200-tool hub, `tool_exposure: auto`, threshold 500: an OpenAI
    model (128 at most) gets the meta-tools, an Anthropic one every tool."""
    plan = LoopPlan(client_tools=[], hub_tools={t.name: t for t in tools}, provider=provider)
    plan.catalog = CatalogService(CatalogSettings(mode="auto", threshold=500))
    samples: list[float] = []
    for _ in range(rounds):
        started = time.perf_counter()
        plan.offered()
        samples.append((time.perf_counter() - started) * 1_000_000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()
    tools = tuple(catalog(args.copies))
    index = ToolIndex()
    print(f"| {len(tools)} tools on {len({t.server for t in tools})} servers | value | note")
    print("|---|---|---")
    _row("build (full index)", f"{_timed(lambda: index.sync(tools)):.1f} ms")
    _row("resync, same catalog object", f"{_timed(lambda: index.sync(tools)) * 1000:.1f} µs")
    changed = tuple(dataclasses.replace(t, description=f"{t.description} v2") if t.server == "github" else t
                    for t in tools)  # fmt: skip
    _row("resync, one server's 10 tools changed", f"{_timed(lambda: index.sync(changed)):.2f} ms", "all others kept")
    p50, p99 = _percentiles(_search(index, args.rounds))
    _row("search p50 / p99", f"{p50 * 1000:.0f} / {p99 * 1000:.0f} µs", "target: p50 <= 1 ms")
    p50, p99 = _percentiles(anyio.run(_dispatch, list(changed), index, args.rounds))
    _row("hub__search_tools call p50 / p99", f"{p50 * 1000:.0f} / {p99 * 1000:.0f} µs", "scope pass incl.")
    every = [function_tool(t) for t in tools]  # pyright: ignore[reportArgumentType]
    first_500 = every[:500]
    _row("tokens/turn, 500 tools listed", f"~{_tokens(first_500):,}", "len(JSON)/4")
    _row(f"tokens/turn, {len(tools)} tools listed", f"~{_tokens(every):,}", "len(JSON)/4")
    _row("tokens/turn, search mode (4 meta-tools)", f"~{_tokens(meta_functions()):,}", "len(JSON)/4, any catalog")
    for provider in ("openai", "anthropic"):
        p50, _ = _percentiles(_offered(list(tools[:200]), provider, args.rounds * 10))
        mode = "search mode" if provider == "openai" else "all 200 listed"
        _row(f"loop definitions per round, {provider}", f"{p50:.1f} µs", f"200 tools, auto: {mode}")
    _row("load average (1 min) while measuring", f"{os.getloadavg()[0]:.1f}", f"{os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
