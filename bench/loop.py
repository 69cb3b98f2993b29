"""Tool-loop overhead: gateway CPU per round with a scripted fake model and a trivial stdio MCP tool.

The fake model (bench/fake_upstream.py) asks for `bench__echo` until it has seen 4 tool results, then answers, so
each loop request makes 5 model calls and 4 tool calls. The gateway's own CPU (its process only: the model and the
tool server are other processes) is read from /proc over a bounded run and compared with plain requests.

    python bench/loop.py [--duration 6] [--conns 8]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2

from bench.gateway import BENCH, KEY, ROOT, bound_socket, cpu_seconds, fake_upstream, process, tree

ROUNDS = 5  # bench/fake_upstream.py ROUNDS


def config(upstream: str, path: Path) -> None:
    path.write_text(
        "model_list:\n  - model_name: bench\n    litellm_params:\n      model: openai/bench\n"
        f"      api_base: {upstream}/v1\n      api_key: sk-upstream\n"
        f"general_settings:\n  master_key: {KEY}\n"
        f"mcp_servers:\n  bench:\n    transport: stdio\n    command: {sys.executable}\n"
        f"    args: [{json.dumps(str(BENCH / 'echo_mcp.py'))}]\n"
    )


def wait_for_tool(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        tools = httpx2.get(f"{url}/mcp/tools/list", headers={"Authorization": f"Bearer {KEY}"}).json().get("tools", [])
        if any(t["name"] == "bench__echo" for t in tools):
            return
        time.sleep(0.1)
    raise RuntimeError("the bench MCP server did not come up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--conns", type=int, default=8)
    args = parser.parse_args()
    tools = json.dumps({"tools": [{"type": "mcp", "server_label": "bench", "require_approval": "never"}]})
    rows = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        bound_socket() as (sock, port),
        fake_upstream() as upstream,
    ):
        path = Path(tmp) / "loop.yaml"
        config(upstream, path)
        cmd = [
            sys.executable,
            "-m",
            "hub",
            "serve",
            "--config",
            str(path),
            "--fd",
            str(sock.fileno()),
            "--log-level",
            "warning",
        ]
        with process(cmd, port, sock=sock) as proc:
            url = f"http://127.0.0.1:{port}"
            wait_for_tool(url)
            pid = [proc.pid]  # the gateway alone, not its MCP child
            for label, extra, stream in (
                ("plain request (1 model call)", "{}", False),
                ("tool loop (5 model calls, 4 tool calls)", tools, False),
                ("tool loop, streamed", tools, True),
            ):
                before = cpu_seconds(pid)
                result = load_with(url, args, extra, stream)
                cpu_ms = (cpu_seconds(pid) - before) * 1000 / max(1, int(result["requests"]))
                rows.append((label, int(result["requests"]), int(result["errors"]), cpu_ms))
            assert len(tree(proc.pid)) >= 2, "the MCP upstream should run as a child of the gateway"
    base = rows[0][3]
    print("| workload | requests | errors | gateway CPU ms/request | CPU ms per round | CPU ms per extra round |")
    print("|---|---|---|---|---|---|")
    for label, count, errors, cpu in rows:
        rounds = ROUNDS if "loop" in label else 1
        extra = f"{(cpu - base) / (ROUNDS - 1):.3f}" if rounds > 1 else "—"
        print(f"| {label} | {count} | {errors} | {cpu:.3f} | {cpu / rounds:.3f} | {extra} |")


def load_with(url: str, args: argparse.Namespace, extra: str, stream: bool) -> dict[str, Any]:
    import subprocess

    cmd = [
        sys.executable,
        str(BENCH / "loadgen.py"),
        f"{url}/v1/chat/completions",
        "--conns",
        str(args.conns),
        "--duration",
        str(args.duration),
        "--key",
        KEY,
        "--extra",
        extra,
    ]
    out = subprocess.run(
        [*cmd, "--stream"] if stream else cmd, capture_output=True, check=True, timeout=args.duration + 120, cwd=ROOT
    )
    return json.loads(out.stdout)


if __name__ == "__main__":
    main()
