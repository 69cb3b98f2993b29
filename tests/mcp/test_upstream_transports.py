"""Upstreams over SSE and streamable HTTP (server-everything), and a stdio server behind mcp-proxy's SSE bridge."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.mcp.conftest import (
    BIN,
    EVERYTHING,
    MASTER_KEY,
    eventually,
    hub_app,
    hub_of,
    mcp_client,
    requires_everything,
    running,
    text_of,
)
from tests.support.peers import missing_peer
from tests.support.servers import (
    ROOT,
    announced_port,
    inherited_socket,
    node_listen_fd,
    wait_until_serving,
)

pytestmark = pytest.mark.anyio
AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}
MCP_PROXY_ENV = "TOOLHUB_MCP_PROXY"


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str] | None = None, pass_fds: tuple[int, ...] = ()
            ) -> Iterator[subprocess.Popen[bytes]]:  # fmt: skip
    proc = subprocess.Popen(args, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True, pass_fds=pass_fds)  # fmt: skip
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


@contextlib.contextmanager
def everything(mode: str, port: int = 0) -> Iterator[int]:
    """server-everything on a socket bound here (the given port, for a restart); yields the port."""
    with inherited_socket(port) as (sock, bound):
        node_args, env = node_listen_fd(sock)
        with process(["node", *node_args, str(EVERYTHING), mode], env, pass_fds=(sock.fileno(),)) as proc:
            wait_until_serving(f"http://127.0.0.1:{bound}/", proc)  # any answer (404) means it serves
            yield bound


def working_mcp_proxy() -> str:
    """A working mcp-proxy: `$TOOLHUB_MCP_PROXY`, `.venv-mcp-proxy/` (scripts/setup) or PATH; else skip, saying why."""
    candidates = [os.environ.get(MCP_PROXY_ENV), str(ROOT / ".venv-mcp-proxy" / "bin" / "mcp-proxy"),
                  shutil.which("mcp-proxy")]  # fmt: skip
    for candidate in filter(None, candidates):
        with contextlib.suppress(OSError):
            if subprocess.run([candidate, "--help"], capture_output=True, timeout=30).returncode == 0:
                return candidate
    missing_peer(f"no working mcp-proxy: it pins mcp<2, so it needs a venv of its own (scripts/setup makes "
                 f".venv-mcp-proxy/), or set {MCP_PROXY_ENV}=<venv>/bin/mcp-proxy")  # fmt: skip


async def test_sse_and_streamable_http_upstreams_serve_like_stdio_ones() -> None:
    requires_everything()
    with everything("sse") as sse_port, everything("streamableHttp") as http_port:
        servers = {"evsse": {"url": f"http://127.0.0.1:{sse_port}/sse"},  # transport inferred: sse
                   "evhttp": {"url": f"http://127.0.0.1:{http_port}/mcp"}}  # transport inferred: http  # fmt: skip
        app = hub_app(servers)
        with running(app) as url:
            progress: list[float] = []

            async def on_progress(value: float, total: float | None, message: str | None) -> None:
                progress.append(value)

            async with mcp_client(f"{url}/mcp") as client:
                over_sse = await client.call_tool("evsse__echo", {"message": "sse"})
                over_http = await client.call_tool("evhttp__echo", {"message": "http"})
                args = {"duration": 0.2, "steps": 2}
                await client.call_tool("evhttp__trigger-long-running-operation", args, progress_callback=on_progress)
            status = hub_of(app).status()
    assert text_of(over_sse) == "Echo: sse"
    assert text_of(over_http) == "Echo: http"
    assert progress == [1.0, 2.0]
    assert (status["evsse"]["transport"], status["evhttp"]["transport"]) == ("sse", "http")


async def test_a_restarted_http_upstream_is_reconnected() -> None:
    requires_everything()

    def echo(url: str, message: str) -> httpx2.Response:
        body = {"name": "evhttp__echo", "arguments": {"message": message}}
        return httpx2.post(f"{url}/mcp/tools/call", headers=AUTH, json=body)

    with contextlib.ExitStack() as upstream:
        port = upstream.enter_context(everything("streamableHttp"))
        app = hub_app({"evhttp": {"url": f"http://127.0.0.1:{port}/mcp"}})
        with running(app) as url:
            first = echo(url, "1")
            upstream.close()  # kills it
            down = echo(url, "2")  # fails fast, and the hub starts reconnecting
            eventually(lambda: hub_of(app).status()["evhttp"]["state"] == "down", what="the upstream to be down")
            with everything("streamableHttp", port):
                eventually(lambda: hub_of(app).upstreams["evhttp"].healthy, what="the upstream to be back")
                back = echo(url, "3")
    assert first.status_code == 200
    assert down.status_code == 503
    assert back.json()["content"] == [{"type": "text", "text": "Echo: 3"}]


async def test_a_stdio_server_behind_mcp_proxy_is_reached_over_sse(tmp_path: Path) -> None:
    proxy = working_mcp_proxy()
    time_server = [str(BIN / "mcp-server-time"), "--local-timezone", "UTC"]
    with process([proxy, "--port", "0", "--host", "127.0.0.1", "--", *time_server]) as proc:
        port = announced_port(proc)  # mcp-proxy takes no socket: it binds port 0 itself and logs the port
        app = hub_app({"time": {"url": f"http://127.0.0.1:{port}/sse"}})
        with running(app) as url:
            async with mcp_client(f"{url}/mcp") as client:
                names = {t.name for t in (await client.list_tools()).tools}
                now = await client.call_tool("time__get_current_time", {"timezone": "Asia/Tokyo"})
    assert names == {"time__convert_time", "time__get_current_time"}
    assert '"timezone": "Asia/Tokyo"' in text_of(now)
