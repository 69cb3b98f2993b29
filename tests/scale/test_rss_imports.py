"""What `toolhub serve` imports at start: heavy libraries only when the configuration uses them (issue 17, RSS)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx2
import pytest
import yaml
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.scale.support import MASTER, STARTUP_TIMEOUT, chat_body, fake_upstream, write_config
from tests.support.hub import wait_for_tools
from tests.support.servers import inherited_socket, stop, wait_until_serving

ECHO_MCP = Path(__file__).resolve().parents[2] / "bench" / "echo_mcp.py"

_PROBE = "import sys, importlib; importlib.import_module(sys.argv[1]); print('redis' in sys.modules)"


def _imports_redis(module: str) -> bool:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, module], capture_output=True, text=True, check=True, timeout=120
    )
    return out.stdout.strip() == "True"


@pytest.mark.parametrize(
    "module", ["hub.accounts.ratelimit", "hub.cache.store", "hub.cache.service", "hub.router.cooldown"]
)
def test_modules_that_talk_to_redis_import_it_only_for_a_client(module: str) -> None:
    assert not _imports_redis(module)


def test_the_server_does_not_import_redis() -> None:
    assert not _imports_redis("hub.server")


def test_redis_error_is_the_real_class_once_a_client_exists() -> None:
    from hub.accounts.ratelimit import redis_client, redis_error

    redis_client("redis://127.0.0.1:1/0")
    from redis.exceptions import RedisError

    assert redis_error() is RedisError


def test_redis_error_before_any_client_is_never_raised_by_anything_else() -> None:
    probe = ("import sys; from hub.accounts.ratelimit import redis_error; e = redis_error();"
             "print('redis' in sys.modules, issubclass(OSError, e), issubclass(e, OSError))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["False", "False", "False"]


def test_the_tuned_server_loads_no_websocket_library() -> None:
    probe = ("import sys, uvicorn; from starlette.applications import Starlette;"
             "from hub.scale.tuned import TunedServer;"
             "config = TunedServer(uvicorn.Config(Starlette(), log_level='warning')).config; config.load();"
             "print(config.ws, config.ws_protocol_class, 'websockets' in sys.modules)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["none", "None", "False"]


_DEFERRED = ("aiohttp", "redis", "asyncpg", "jinja2", "websockets")
"""Libraries a worker loads only for the feature that needs them: aiohttp (about 7 MB with its dependencies) on the
first image URL a provider fetches (upstream calls go through providers._wire), redis with `redis_url`, asyncpg with a
PostgreSQL `database_url`, jinja2 on the first /ui page."""

_IMAGE_BODY = {
    "model": "gemini",
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is it?"},
                {"type": "image_url", "image_url": {"url": "http://127.0.0.1:9/a.png"}},
            ],
        }
    ],
}
"""A request whose image Gemini needs inline: the gateway fetches it with aiohttp, here refused as a private
address before anything is sent."""


_TRACING_ON = ("hub.ops.tracing.setup", "hub.ops.tracing.otlp", "hub.ops.tracing.proto", "hub.ops.tracing.middleware",
               "grpc")  # fmt: skip


def _plain_config(tmp_path: Path, upstream: int) -> Path:
    """A model of each provider (`bench` on the fake upstream), SQLite usage, a master key; no MCP, no Redis."""
    path = write_config(tmp_path / "config.yaml", upstream, database_url=f"sqlite:///{tmp_path}/usage.db")
    config = yaml.safe_load(path.read_text())
    config["model_list"] += [
        {"model_name": "claude", "litellm_params": {"model": "anthropic/claude-sonnet-4-5", "api_key": "x"}},
        {"model_name": "gemini", "litellm_params": {"model": "gemini/gemini-3-flash-preview", "api_key": "x"}},
    ]
    path.write_text(yaml.safe_dump(config))
    return path


def _imported(log: Path) -> set[str]:
    """The modules a `-X importtime` log (PYTHONPROFILEIMPORTTIME) lists as imported so far."""
    lines = log.read_text().splitlines()
    return {line.rsplit("|", 1)[1].strip() for line in lines if line.startswith("import time:")}


def _loaded(log: Path) -> set[str]:
    """The top-level packages of `_imported`."""
    return {name.split(".")[0] for name in _imported(log)}


@contextlib.contextmanager
def _serving(config: Path, log: Path) -> Iterator[str]:
    """`toolhub serve` on `config`, its `-X importtime` log in `log`; yields its URL once it answers."""
    with inherited_socket() as (sock, port), log.open("wb") as err:
        argv = [sys.executable, "-m", "hub", "serve", "--config", str(config), "--fd", str(sock.fileno()),
                "--log-level", "warning"]  # fmt: skip
        proc = subprocess.Popen(argv, env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}, stdout=subprocess.DEVNULL,
                                stderr=err, pass_fds=(sock.fileno(),))  # fmt: skip
        try:
            wait_until_serving(f"http://127.0.0.1:{port}/health/liveliness", proc, timeout=STARTUP_TIMEOUT)
            yield f"http://127.0.0.1:{port}"
        finally:
            stop(proc)


def test_a_plain_serve_loads_no_deferred_library_until_a_request_needs_it(tmp_path: Path) -> None:
    log = tmp_path / "importtime.log"
    with fake_upstream() as upstream, _serving(_plain_config(tmp_path, upstream), log) as url:
        at_start = _imported(log)
        answer = httpx2.post(f"{url}/v1/chat/completions", json=chat_body(),
                             headers={"authorization": f"Bearer {MASTER}"}, timeout=60)  # fmt: skip
        after_chat = _loaded(log)
        image = httpx2.post(f"{url}/v1/chat/completions", json=_IMAGE_BODY,
                            headers={"authorization": f"Bearer {MASTER}"}, timeout=60)  # fmt: skip
        login_page = httpx2.get(f"{url}/ui/login", timeout=60)
    assert {"hub", "uvicorn"} <= at_start  # the log is read, and lists the server's imports
    assert sorted({name.split(".")[0] for name in at_start}.intersection(_DEFERRED)) == []
    assert sorted(name for name in at_start if name.startswith("hub.ui.")) == []  # the console's pages
    assert sorted(at_start.intersection(_TRACING_ON)) == []  # tracing is off: no recorder, exporter or middleware
    assert (answer.status_code, image.status_code, login_page.status_code) == (200, 400, 200)
    assert "aiohttp" not in after_chat  # an upstream call goes through providers._wire
    assert "aiohttp" in _loaded(log)  # deferred, not dropped: the first image URL to fetch loads it
    assert "hub.ui.web" in _imported(log)  # and the first page the console's modules (the log leaves out
    # those imported by `importlib.import_module`, the page's own among them)
    assert "frozenlist._frozenlist" not in log.read_text()  # its C++ build loads libstdc++ (hub/cli.py)


_FRAMEWORK = ("cryptography", "jwt", "pydantic_settings")
"""What the MCP SDK's server framework (`mcp.server.mcpserver`, which the hub does not use) would load: hub/cli.py
keeps it out of `serve` (about 8 MB of a worker)."""


async def _mcp_echo(url: str) -> tuple[list[str], str]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {MASTER}"}) as http,
        streamable_http_client(f"{url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        tools = await session.list_tools()
        result = await session.call_tool("echo__echo", {"text": "lean"})
    return [tool.name for tool in tools.tools], result.content[0].text  # type: ignore[union-attr]


def test_a_worker_serves_mcp_without_the_sdks_server_framework(tmp_path: Path) -> None:
    log = tmp_path / "importtime.log"
    with fake_upstream() as upstream:
        path = _plain_config(tmp_path, upstream)
        config = yaml.safe_load(path.read_text())
        config["mcp_servers"] = {"echo": {"command": sys.executable, "args": [str(ECHO_MCP)]}}
        path.write_text(yaml.safe_dump(config))
        with _serving(path, log) as url:
            wait_for_tools(url, {"echo"}, MASTER)
            listed, echoed = anyio.run(_mcp_echo, url)
    assert (listed, echoed) == (["echo__echo"], "lean")
    assert {"hub", "mcp"} <= _loaded(log)  # the log lists the server's imports, the MCP SDK's among them
    assert sorted(_loaded(log).intersection(_FRAMEWORK)) == []
    assert "mcp.server.mcpserver.server" not in log.read_text()


_PLACEHOLDER_PROBE = """
import sys
from hub.cli import keep_out_mcp_server_framework
keep_out_mcp_server_framework()
import mcp.server
for attempt in (lambda: mcp.server.MCPServer("x"), lambda: type("Sub", (mcp.server.MCPServer,), {})):
    try:
        attempt()
    except RuntimeError as exc:
        print("refused:", "keep_out_mcp_server_framework" in str(exc))
try:
    from mcp.server.mcpserver import Context
except ImportError as exc:
    print("import refused:", "keep_out_mcp_server_framework" in str(exc))
print(hasattr(sys.modules["mcp.server.mcpserver"], "Context"), getattr(sys.modules["mcp.server.mcpserver"], "X", 1))
print("cryptography" in sys.modules)
"""


def test_the_framework_placeholder_refuses_loudly_what_it_does_not_provide() -> None:
    out = subprocess.run([sys.executable, "-c", _PLACEHOLDER_PROBE], capture_output=True, text=True, check=True,
                         timeout=120)  # fmt: skip
    assert out.stdout.splitlines() == ["refused: True", "refused: True", "import refused: True", "False 1", "False"]


def test_a_process_that_imported_mcp_keeps_the_real_framework() -> None:
    from hub.cli import keep_out_mcp_server_framework

    keep_out_mcp_server_framework()  # this test process has imported mcp (the module's imports): a no-op
    from mcp.server import MCPServer

    assert MCPServer.__module__ == "mcp.server.mcpserver.server"
