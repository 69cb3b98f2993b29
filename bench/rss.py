"""Resident memory of one `toolhub serve` worker: after start, after its first request, and after 1,000 requests
(issue 17: ≤ 80 MB a worker).

Runs the real server (`python -m hub serve --workers 1`) on configs/config.example.yaml (its models, its MCP stdio
server, embedded SQLite for usage) plus one model, `bench`, pointed at the fast fake upstream; provider keys are
dummies (nothing is sent to them). RSS is VmRSS of the serving process alone (the MCP server it starts is a separate
process, listed apart). The first request is counted apart: what it loads or builds on first use (before
providers/_wire, aiohttp and its dependencies, about 7 MB; a chat call no longer imports aiohttp). `--before REV`
measures a git revision too (extracted with `git archive` into a temporary directory, run from there), so one
table shows before and after; `--tree DIR` measures a copy of the sources too (say, with a patch applied):

    python bench/rss.py [--before HEAD~3] [--tree /tmp/patched] [--runs 3] [--requests 1000]

All traffic is on 127.0.0.1; every load loop is bounded by its request count and a time limit.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.gateway import BENCH, KEY, ROOT, bound_socket, process, tree

DUMMY_ENV = {"ANTHROPIC_API_KEY": "x", "GEMINI_API_KEY": "x", "OPENAI_API_KEY": "x", "TOOLHUB_MASTER_KEY": KEY}


def write_config(path: Path, upstream: int, tmp: Path) -> Path:
    import yaml

    config = yaml.safe_load((ROOT / "configs" / "config.example.yaml").read_text())
    config["model_list"].append({"model_name": "bench", "litellm_params": {
        "model": "openai/bench", "api_key": "sk-x", "api_base": f"http://127.0.0.1:{upstream}/v1"}})  # fmt: skip
    config["general_settings"]["database_url"] = f"sqlite:///{tmp}/rss.db"
    path.write_text(yaml.safe_dump(config))
    return path


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextlib.contextmanager
def source(rev: str | None) -> Iterator[Path]:
    """This checkout, or `rev` extracted into a temporary directory."""
    if rev is None or Path(rev).is_dir():
        yield ROOT if rev is None else Path(rev).resolve()
        return
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        yield Path(tmp)


Row = tuple[float, float, float, float, int]


def measure(tree_root: Path, config: Path, requests: int) -> Row:
    """(RSS after start, after the first request, after `requests` requests, RSS of the MCP children, errors)."""
    env = {**DUMMY_ENV, "PYTHONPATH": str(tree_root)}
    with bound_socket() as (sock, port):
        cmd = [sys.executable, "-m", "hub", "serve", "--config", str(config), "--fd", str(sock.fileno()),
               "--workers", "1", "--log-level", "warning"]  # fmt: skip
        with process(cmd, port, env, sock, cwd=tree_root, timeout=120) as proc:
            time.sleep(2)  # the MCP upstream connected, startup tasks done
            started = rss_mb(proc.pid)
            results = [_requests(port, 1, conns=1)]
            time.sleep(1)
            first = rss_mb(proc.pid)
            results.append(_requests(port, requests - 1))
            time.sleep(1)  # the usage flusher has written its batch
            after = rss_mb(proc.pid)
            children = sum(rss_mb(pid) for pid in tree(proc.pid) if pid != proc.pid)
    answered = sum(int(r["requests"]) - int(r["errors"]) for r in results)
    return started, first, after, children, requests - answered


def _requests(port: int, count: int, conns: int = 16) -> dict[str, Any]:
    args = [sys.executable, str(BENCH / "loadgen.py"), f"http://127.0.0.1:{port}/v1/chat/completions", "--conns",
            str(conns), "--duration", "120", "--max-requests", str(count), "--key", KEY]  # fmt: skip
    return json.loads(subprocess.run(args, capture_output=True, check=True, timeout=300).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--before", help="a git revision to measure too (e.g. HEAD~3)")
    parser.add_argument("--tree", help="a directory holding another copy of the sources (hub/, providers/, tools/)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    revs: list[str | None] = [*([args.before] if args.before else []), None, *([args.tree] if args.tree else [])]
    rows: dict[str | None, list[Row]] = {rev: [] for rev in revs}
    with tempfile.TemporaryDirectory() as tmp_dir, bound_socket() as (up_sock, upstream):
        tmp = Path(tmp_dir)
        up = subprocess.Popen([sys.executable, str(BENCH / "fake_upstream.py"), "--fd", str(up_sock.fileno())],
                              pass_fds=(up_sock.fileno(),), stdout=subprocess.DEVNULL)  # fmt: skip
        try:
            config = write_config(tmp / "config.yaml", upstream, tmp)
            for run in range(args.runs):
                for rev in revs if run % 2 == 0 else revs[::-1]:
                    with source(rev) as root:
                        rows[rev].append(measure(root, config, args.requests))
                    print(f"run {run + 1}/{args.runs} {rev or 'working tree'}: {rows[rev][-1]}", file=sys.stderr)
        finally:
            up.terminate()
            up.wait(15)
    print(table(rows, args.requests))


def table(rows: dict[str | None, list[Row]], requests: int) -> str:
    def med(values: list[float]) -> str:
        return f"{statistics.median(values):.1f} ({min(values):.1f} – {max(values):.1f})"

    runs = len(next(iter(rows.values())))
    lines = [f"| source ({runs} runs: median (min – max)) | worker RSS after start (MB) | after its first request "
             f"(MB) | after {requests:,} requests (MB) | MCP stdio children (MB) | errors |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for rev, measured in rows.items():
        columns = [med([m[i] for m in measured]) for i in range(4)]
        lines.append(f"| {rev or 'working tree'} | {' | '.join(columns)} | {sum(m[4] for m in measured)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
