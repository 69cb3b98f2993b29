"""Failover benchmark: latency added by the router when a group's primary deployment is down.

Starts the fast fake upstream (bench/fake_upstream.py) as the healthy deployment, then `toolhub serve` three times:

    healthy only        the group has just the healthy deployment (the baseline)
    primary refuses     order 1 is a port that refuses connections, order 2 the healthy deployment
    primary times out   order 1 accepts connections and never answers (timeout 1 s), order 2 the healthy one

For each, one request first (the first failure, timed on its own: it pays the refusal or the timeout), then
bench/loadgen.py at 8 connections, non-streaming and streaming. `added p50/p99` is against the baseline row.
`router_settings`: num_retries 1, cooldown_time 60 (longer than a run: a cooled deployment is not retried here;
with LiteLLM's default of 5 s one request per 5 s would pay the refusal or the timeout again).

    python bench/failover.py [--duration 6]

All traffic goes to 127.0.0.1; every load loop is bounded by time and request count.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.gateway import BENCH, KEY, free_port, load, pct, process


@contextlib.contextmanager
def blackhole() -> Iterator[int]:
    """A port that accepts connections and reads requests but never answers."""
    loop = asyncio.new_event_loop()
    port = free_port()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):
            pass
        writer.close()

    server = loop.run_until_complete(asyncio.start_server(hold, "127.0.0.1", port))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def config(path: Path, healthy: str, primary: str | None) -> None:
    entries = []
    if primary is not None:
        entries.append(f"  - model_name: bench\n    litellm_params: {{model: openai/bench, api_base: '{primary}', "
                       "api_key: sk-upstream, order: 1, timeout: 1}\n")  # fmt: skip
    entries.append(f"  - model_name: bench\n    litellm_params: {{model: openai/bench, api_base: '{healthy}/v1', "
                   "api_key: sk-upstream, order: 2}\n")  # fmt: skip
    path.write_text(
        "model_list:\n" + "".join(entries) + "router_settings: {num_retries: 1, cooldown_time: 60}\n"
        f"general_settings: {{master_key: {KEY}}}\n"
    )


def one_request(port: int) -> tuple[float, int, dict[str, str]]:
    """(seconds, status, x-litellm headers) of one non-streaming request."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps({"model": "bench", "messages": [{"role": "user", "content": "hi"}]})
    started = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body, {"Authorization": f"Bearer {KEY}",
                                                        "Content-Type": "application/json"})  # fmt: skip
    response = conn.getresponse()
    response.read()
    elapsed = time.perf_counter() - started
    headers = {k: v for k, v in response.getheaders() if k.startswith("x-litellm-attempted")}
    conn.close()
    return elapsed, response.status, headers


def run(name: str, healthy: str, primary: str | None, tmp: Path, duration: float) -> list[dict[str, Any]]:
    path = tmp / f"{name.replace(' ', '-')}.yaml"
    config(path, healthy, primary)
    port = free_port()
    cmd = [sys.executable, "-m", "hub", "serve", "--config", str(path), "--port", str(port), "--log-level", "error"]
    rows: list[dict[str, Any]] = []
    with process(cmd, port) as proc:
        first, status, headers = one_request(port)
        for stream in (False, True):
            result = load(f"http://127.0.0.1:{port}/v1/chat/completions", 8, duration, stream, KEY)
            latency: list[float] = result["latency"]  # type: ignore[assignment]
            rows.append({"target": name, "mode": "stream (20 chunks)" if stream else "non-stream",
                         "first_ms": first * 1000, "first_status": status, "first_headers": headers,
                         "p50": pct(latency, 0.5), "p99": pct(latency, 0.99), "errors": result["errors"],
                         "requests": result["requests"], "pid": proc.pid})  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per load run (bounded)")
    args = parser.parse_args()
    up_port = free_port()
    with (
        tempfile.TemporaryDirectory() as tmp,
        process([sys.executable, str(BENCH / "fake_upstream.py"), "--port", str(up_port)], up_port),
        blackhole() as hole,
    ):
        healthy = f"http://127.0.0.1:{up_port}"
        rows = run("healthy only", healthy, None, Path(tmp), args.duration)
        rows += run("primary refuses", healthy, f"http://127.0.0.1:{free_port()}/v1", Path(tmp), args.duration)
        rows += run("primary times out", healthy, f"http://127.0.0.1:{hole}/v1", Path(tmp), args.duration)
    base = {r["mode"]: r for r in rows if r["target"] == "healthy only"}
    print("| primary deployment | mode | first request ms | p50 ms @8 | p99 ms @8 | added p50 ms | added p99 ms "
          "| errors |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        b = base[r["mode"]]
        added50 = float(r["p50"]) - float(b["p50"])
        added99 = float(r["p99"]) - float(b["p99"])
        print(f"| {r['target']} | {r['mode']} | {float(r['first_ms']):.1f} | {float(r['p50']):.2f} "
              f"| {float(r['p99']):.2f} | {added50:+.2f} | {added99:+.2f} | {r['errors']} |")  # fmt: skip
    print(f"\nmachine: {os.cpu_count()} cores; Python {sys.version.split()[0]}; one run per row")


if __name__ == "__main__":
    main()
