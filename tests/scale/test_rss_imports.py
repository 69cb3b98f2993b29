"""What `toolhub serve` imports at start: heavy libraries only when the configuration uses them (issue 17, RSS)."""

from __future__ import annotations

import subprocess
import sys

import pytest

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
