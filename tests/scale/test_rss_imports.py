"""What `toolhub serve` imports at start: heavy libraries only when the configuration uses them (issue 17, RSS)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest
import yaml

from tests.scale.support import MASTER, STARTUP_TIMEOUT, chat_body, fake_upstream, write_config
from tests.support.servers import inherited_socket, stop, wait_until_serving

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
"""Libraries a worker loads only for the feature that needs them: aiohttp (about 13 MB with its dependencies) on the
first upstream call, redis with `redis_url`, asyncpg with a PostgreSQL `database_url`, jinja2 on the first /ui page."""


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


def _loaded(log: Path) -> set[str]:
    """Top-level packages a `-X importtime` log (PYTHONPROFILEIMPORTTIME) lists as imported so far."""
    lines = log.read_text().splitlines()
    return {line.rsplit("|", 1)[1].strip().split(".")[0] for line in lines if line.startswith("import time:")}


def test_a_plain_serve_loads_no_deferred_library_until_a_request_needs_it(tmp_path: Path) -> None:
    log = tmp_path / "importtime.log"
    with fake_upstream() as upstream, inherited_socket() as (sock, port), log.open("wb") as err:
        argv = [sys.executable, "-m", "hub", "serve", "--config", str(_plain_config(tmp_path, upstream)),
                "--fd", str(sock.fileno()), "--log-level", "warning"]  # fmt: skip
        proc = subprocess.Popen(argv, env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}, stdout=subprocess.DEVNULL,
                                stderr=err, pass_fds=(sock.fileno(),))  # fmt: skip
        try:
            wait_until_serving(f"http://127.0.0.1:{port}/health/liveliness", proc, timeout=STARTUP_TIMEOUT)
            at_start = _loaded(log)
            answer = httpx2.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=chat_body(),
                                 headers={"authorization": f"Bearer {MASTER}"}, timeout=60)  # fmt: skip
        finally:
            stop(proc)
    assert {"hub", "uvicorn"} <= at_start  # the log is read, and lists the server's imports
    assert sorted(at_start.intersection(_DEFERRED)) == []
    assert answer.status_code == 200
    assert "aiohttp" in _loaded(log)  # deferred, not dropped: the first upstream call loads it
