"""What OpenTelemetry tracing costs per request, in gateway CPU (issue 18's budget: <= 0.02 ms off, <= 0.1 ms on).

Starts the fast fake upstream, an OTLP/HTTP sink (decodes and counts the spans it gets), and one gateway process per
row; drives non-streaming requests at 64 connections with bench/loadgen.py and reads the gateway's CPU time from
/proc (its exporter thread included), as bench/keys_overhead.py does. Rows:

    off         create_app without tracing (the hooks then cost one context-variable lookup each)
    on          tracing on, every request sampled, spans batched to the sink over OTLP/HTTP (protobuf)
    unsampled   tracing on with sample_ratio 0: the sampling decision and traceparent propagation only

The app is wrapped the way hub/app.py wraps it when `general_settings.otel` is set (outermost middleware, the
provider opened around the lifespan), so the bench runs with or without the lead's hooks applied.
It also times, in this process, each hook with tracing off and what tracing one request costs without the network
(server span, one attempt span, the finish hook, encoding): a number this shared machine's noise does not move.

    python bench/tracing.py [--duration 8] [--runs 3]

All traffic is on 127.0.0.1; every load loop is bounded by time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import timeit
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.gateway import BENCH, cpu_seconds, free_port, load, process, tree
from bench.keys_overhead import MASTER, write_config

MODES = {"off": "tracing off", "on": "tracing on, sampled (batched OTLP/HTTP)", "unsampled": "tracing on, unsampled"}
Row = tuple[str, float, float, int, float]


def serve(args: argparse.Namespace) -> None:
    """One gateway (this script re-executes itself with --serve MODE)."""
    import uvicorn

    from hub.app import create_app
    from hub.config import load_config

    app: Any = create_app(load_config(args.config))
    if args.serve != "off":
        app = traced(app, f"http://127.0.0.1:{args.sink}", 1.0 if args.serve == "on" else 0.0)
    uvicorn.run(app, host="127.0.0.1", port=args.port, loop="uvloop", http="httptools", log_level="warning",
                access_log=False)  # fmt: skip


def traced(app: Any, endpoint: str, ratio: float) -> Any:
    from hub.ops.tracing import OtelSpec, tracing_settings
    from hub.ops.tracing.middleware import TracingMiddleware
    from hub.ops.tracing.setup import Tracing

    settings = tracing_settings(OtelSpec(endpoint=endpoint, sample_ratio=ratio), {})
    assert settings is not None
    tracing = Tracing(settings)
    middleware = TracingMiddleware(app, tracing)

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await middleware(scope, receive, send)
            return
        held: list[Any] = []

        async def hold(message: Any) -> None:
            held.append(message) if message["type"] == "lifespan.shutdown.complete" else await send(message)

        async with tracing.running():
            await app(scope, receive, hold)
        for message in held:
            await send(message)

    return wrapped


def sink(port: int) -> None:
    """An OTLP/HTTP receiver that counts spans (`GET /count`); run as its own process."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    count = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal count
        while head := await reader.readuntil(b"\r\n\r\n"):
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            body = await reader.readexactly(length) if length else b""
            if head.startswith(b"GET /count"):
                out = str(count).encode()
            else:
                message = ExportTraceServiceRequest()
                message.ParseFromString(body)
                count += sum(len(ss.spans) for rs in message.resource_spans for ss in rs.scope_spans)
                out = b""
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: "
                         + str(len(out)).encode() + b"\r\n\r\n" + out)  # fmt: skip
            await writer.drain()

    async def main() -> None:
        server = await asyncio.start_server(lambda r, w: _quietly(handle(r, w)), "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


async def _quietly(work: Any) -> None:
    try:
        await work
    except (asyncio.IncompleteReadError, ConnectionError):
        pass


def spans_received(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/count", timeout=10) as response:
        return int(response.read())


def row(mode: str, config: Path, duration: float, sink_port: int) -> Row:
    port = free_port()
    cmd = [sys.executable, str(Path(__file__)), "--serve", mode, "--config", str(config), "--port", str(port),
           "--sink", str(sink_port)]  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    spans_before = spans_received(sink_port)
    with process(cmd, port) as proc:
        warm = load(url, 16, 2, False, MASTER)  # warm up
        pids = tree(proc.pid)
        before = cpu_seconds(pids)
        result = load(url, 64, duration, False, MASTER)
        cpu = cpu_seconds(pids) - before
    count = int(result["requests"])  # type: ignore[arg-type]
    total = count + int(warm["requests"])  # type: ignore[arg-type]
    spans = (spans_received(sink_port) - spans_before) / max(total, 1)  # the gateway flushed on its way out
    rps = count / float(result["seconds"])  # type: ignore[arg-type]
    return MODES[mode], rps, cpu / max(count, 1) * 1000, int(result.get("errors", 0)), spans  # type: ignore[arg-type]


def hook_costs() -> list[tuple[str, float]]:
    """Microseconds per call of each hook with tracing off (no request trace in the context)."""
    from hub.accounts.usage import UsageRecord
    from hub.ops import tracing
    from providers._http import TRACE_HEADERS

    record = UsageRecord("r", None, "m", "m", "openai", 200, False, 1.0)

    async def result() -> int:
        return 1

    def tool_call() -> None:
        coro = tracing.tool_call("s", "t", None, result())
        try:
            coro.send(None)
        except StopIteration:
            pass

    cases = [("tracing.current() (router, per request)", tracing.current),
             ("tracing.finish(record) (chat.py, per request)", lambda: tracing.finish(record)),
             ("tracing.next_round(n) (tool loop, per round)", lambda: tracing.next_round(1)),
             ("TRACE_HEADERS.get() (providers/_http.py, per call)", TRACE_HEADERS.get),
             ("tracing.tool_call(...) wrapper (per MCP call)", tool_call)]  # fmt: skip
    return [(name, min(timeit.repeat(fn, number=200_000, repeat=5)) / 200_000 * 1e6) for name, fn in cases]


def in_process() -> tuple[float, float]:
    """CPU µs per request of a bare ASGI app that makes one traced attempt, without and with `TracingMiddleware`
    (spans encoded and handed to a sender that drops them): best of 5 rounds of 3,000."""
    from hub.accounts.usage import UsageRecord
    from hub.ops import tracing
    from hub.ops.tracing import OtelSpec, tracing_settings
    from hub.ops.tracing.middleware import TracingMiddleware
    from hub.ops.tracing.setup import Tracing
    from providers.base import ChatRequest, Deployment

    deployment = Deployment(provider="openai", model="bench", api_base="http://127.0.0.1:9/v1")
    body = {"model": "bench", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}
    message = {"role": "assistant", "content": "hi"}
    completion = {"id": "chatcmpl-1", "model": "bench", "usage": {"prompt_tokens": 3, "completion_tokens": 2},
                  "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}  # fmt: skip
    record = UsageRecord("0123456789abcdef", None, "bench", "bench", "openai", 200, False, 1.0, prompt_tokens=3,
                         completion_tokens=2, cost=0.0001, upstream_ms=0.5)  # fmt: skip
    attempt = {"toolhub.model_group": "bench", "toolhub.deployment_id": "abcdef0123456789", "toolhub.retry": 0,
               "toolhub.fallback": False}  # fmt: skip
    start = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}

    async def answer() -> dict[str, Any]:
        return completion

    async def app(scope: Any, receive: Any, send: Any) -> None:
        trace = tracing.current()
        if trace is None:
            await answer()
        else:
            await trace.attempt(answer, ChatRequest(body=body, deployment=deployment), dict(attempt), False)
        tracing.finish(record)
        await send(start)
        await send({"type": "http.response.body", "body": b"{}"})

    async def measure() -> tuple[float, float]:
        settings = tracing_settings(OtelSpec(endpoint="http://127.0.0.1:9"), {})
        assert settings is not None
        traced = Tracing(settings, sender=lambda body: None)
        async with traced.running():
            assert traced.exporter is not None
            exporter, middleware = traced.exporter, TracingMiddleware(app, traced)
            scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "scheme": "http",
                     "headers": [(b"host", b"hub"), (b"content-type", b"application/json")], "client": ("127.0.0.1", 1),
                     "state": {"request_id": "0123456789abcdef"}}  # fmt: skip

            async def nothing(*_: Any) -> Any:
                return {}

            best: list[float] = []
            for target in (app, middleware):
                rounds = []
                for _ in range(5):
                    before = time.process_time()
                    for _ in range(3000):
                        await target(scope, nothing, nothing)
                    exporter.encode()
                    while exporter.buffer:  # `_take` keeps `size` in step (else the export loop spins)
                        exporter._export(exporter._take())  # pyright: ignore[reportPrivateUsage]
                    rounds.append((time.process_time() - before) / 3000 * 1e6)
                best.append(min(rounds))
            return best[0], best[1]

    return asyncio.run(measure())


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--serve", choices=list(MODES))
    parser.add_argument("--config")
    parser.add_argument("--port", type=int)
    parser.add_argument("--sink", type=int)
    parser.add_argument("--sink-only", action="store_true")
    args = parser.parse_args()
    if args.sink_only:
        sink(args.port)
        return
    if args.serve:
        serve(args)
        return
    upstream, sink_port = free_port(), free_port()
    runs: list[list[Row]] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        process([sys.executable, str(BENCH / "fake_upstream.py"), "--port", str(upstream)], upstream),
        process([sys.executable, str(Path(__file__)), "--sink-only", "--port", str(sink_port)], sink_port),
    ):
        config = Path(tmp) / "bench.yaml"
        write_config(config, upstream, None, None)
        for run in range(args.runs):
            order = [*list(MODES)[run % 3 :], *list(MODES)[: run % 3]]
            measured = {mode: row(mode, config, args.duration, sink_port) for mode in order}
            runs.append([measured[mode] for mode in MODES])
            print(f"run {run + 1}/{args.runs}: " + ", ".join(f"{r[0]} {r[2]:.3f} ms" for r in runs[-1]),
                  file=sys.stderr, flush=True)  # fmt: skip
    print(table(runs))
    off, on = in_process()
    print()
    print(
        f"In process, without the network: {on - off:.1f} µs of CPU to trace one request (server span, one attempt,"
        f" the finish hook, encoding; best of 5 rounds)."
    )
    print()
    print("| hook, tracing off | µs per call |\n|---|---|")
    for name, micro in hook_costs():
        print(f"| {name} | {micro:.3f} |")


def table(runs: list[list[Row]]) -> str:
    def spread(values: list[float], fmt: str) -> str:
        low, mid, high = (fmt.format(v) for v in (min(values), statistics.median(values), max(values)))
        return low if low == high else f"{mid} ({low} – {high})"

    head = (f"| gateway ({len(runs)} runs: median (min – max)) | req/s (64 conns) | CPU per request | vs off "
            "| spans exported per request | errors |")  # fmt: skip
    lines = [head, "|---|---|---|---|---|---|"]
    for i, (name, *_) in enumerate(runs[0]):
        rps, cpu = [run[i][1] for run in runs], [run[i][2] for run in runs]
        delta = [run[i][2] - run[0][2] for run in runs]
        spans = [run[i][4] for run in runs]
        errors = sum(run[i][3] for run in runs)
        lines.append(f"| {name} | {spread(rps, '{:,.0f}')} | {spread(cpu, '{:.3f}')} ms | {spread(delta, '{:+.3f}')}"
                     f" ms | {spread(spans, '{:.2f}')} | {errors} |")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    main()
