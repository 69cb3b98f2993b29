"""A reload that fails, however it fails, keeps the running gateway whole: its config, router, MCP servers and
database stay, SIGHUP keeps reloading, and `POST /config/reload` answers in OpenAI's error shape."""

from __future__ import annotations

import contextlib
import logging
import queue
import signal
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import IO, Any

import httpx2
import pytest

from hub.config import load_config
from hub.mcp.config import McpServerConfig
from hub.mcp.http import McpHttp
from hub.ops import reload
from hub.router.router import Router
from hub.server import build_app
from tests.fakes.openai_upstream import FakeOpenAI
from tests.mcp.conftest import tool_server
from tests.ops.test_reload import MASTER, chat, entry, hub_tools, models, wait_for, write
from tests.support.servers import serve_app, toolhub_process

BROKEN = {
    "latin1": b"model_list: []\n# caf\xe9\n",
    "alias_loop": b"model_list: &a [*a]\n",
    "deep": b"model_list: " + b"[" * 5000 + b"]" * 5000 + b"\n",
}


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with serve_app(FakeOpenAI().app) as url:
        yield url


def usable(url: str) -> None:
    """The database and the MCP hub still serve (a torn-down lifespan answered 503 for both)."""
    assert httpx2.post(f"{url}/key/generate", headers=MASTER, json={}, timeout=20).status_code == 200
    assert httpx2.get(f"{url}/health/readiness", timeout=20).json()["status"] == "healthy"


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_post_reload_of_a_file_that_cannot_be_read_is_a_400_and_the_gateway_stays(
    tmp_path: Path, upstream: str, kind: str
) -> None:
    path = tmp_path / "config.yaml"
    write(path, [entry("kept", upstream)])
    with serve_app(build_app(load_config(path))) as url:
        path.write_bytes(BROKEN[kind])
        refused = httpx2.post(f"{url}/config/reload", headers=MASTER, timeout=30)
        assert refused.status_code == 400, refused.text
        error = refused.json()["error"]
        assert error["code"] == "invalid_config" and str(path) in error["message"]
        assert models(url) == ["kept"] and chat(url, "kept").status_code == 200
        usable(url)


@contextlib.contextmanager
def stderr_lines(stream: IO[bytes] | None) -> Iterator[queue.Queue[str]]:
    assert stream is not None
    lines: queue.Queue[str] = queue.Queue()

    def drain() -> None:
        with contextlib.suppress(ValueError, OSError):  # closed when the process stops
            for line in stream:
                lines.put(line.decode(errors="replace"))

    threading.Thread(target=drain, daemon=True).start()
    yield lines


def wait_for_line(lines: queue.Queue[str], text: str) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(queue.Empty):
            line = lines.get(timeout=0.2)
            if text in line:
                return line
    raise AssertionError(f"no log line with {text!r}")


def test_sighup_with_a_broken_file_keeps_the_gateway_and_the_next_sighup_reloads(tmp_path: Path, upstream: str) -> None:
    path = tmp_path / "config.yaml"
    write(path, [entry("first", upstream)])
    with toolhub_process(path) as (url, proc), stderr_lines(proc.stderr) as lines:
        path.write_bytes(BROKEN["latin1"])
        proc.send_signal(signal.SIGHUP)
        refused = wait_for_line(lines, "config reload")
        assert f"config reload of {path} refused, the running config stays: " in refused
        assert "is not UTF-8 text: byte 0xe9 on line 2" in refused
        usable(url)
        write(path, [entry("first", upstream), entry("second", upstream)])
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: models(url) == ["first", "second"])
        assert proc.poll() is None
        usable(url)


class Boom(RuntimeError):
    """A failure no loader check foresees (a bug, a resource that cannot be opened)."""


@contextlib.contextmanager
def new_routers_fail(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Starting a router's background work fails while inside (the running router is already started)."""

    @contextlib.asynccontextmanager
    async def failing(self: Router, extras: dict[str, Any] | None = None) -> AsyncIterator[None]:
        raise Boom("cannot start the router")
        yield

    with monkeypatch.context() as patch:
        patch.setattr(Router, "running", failing)
        yield


def test_a_reload_failing_after_the_file_loaded_changes_nothing_and_answers_500(
    tmp_path: Path, upstream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.yaml"
    write(path, [entry("old", upstream)], {"a": tool_server()})
    with serve_app(build_app(load_config(path))) as url:
        wait_for(lambda: "a__echo" in hub_tools(url))
        write(path, [entry("new", upstream)], {"b": tool_server()})
        with new_routers_fail(monkeypatch):
            failed = httpx2.post(f"{url}/config/reload", headers=MASTER, timeout=30)
        assert failed.status_code == 500
        assert failed.json()["error"] == {
            "message": f"config reload of {path} failed, the running config stays: Boom: cannot start the router",
            "type": "server_error", "param": None, "code": "reload_failed"}  # fmt: skip
        assert models(url) == ["old"] and chat(url, "old").status_code == 200
        tools = hub_tools(url)  # the MCP servers were not synced to the file either
        assert "a__echo" in tools and not any(name.startswith("b__") for name in tools)
        usable(url)
        reloaded = httpx2.post(f"{url}/config/reload", headers=MASTER, timeout=30)  # the next one goes through
        assert reloaded.status_code == 200, reloaded.text
        assert models(url) == ["new"]


def test_an_mcp_sync_failing_halfway_is_undone(tmp_path: Path, upstream: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.yaml"
    write(path, [entry("old", upstream)], {"a": tool_server(), "b": tool_server()})
    real_add = McpHttp.add

    async def add(self: McpHttp, config: McpServerConfig) -> None:
        if config.name == "c":
            raise Boom("cannot start c")
        await real_add(self, config)

    with serve_app(build_app(load_config(path))) as url:
        wait_for(lambda: {"a__echo", "b__echo"} <= hub_tools(url))
        write(path, [entry("new", upstream)], {"b": tool_server(), "c": tool_server()})  # a removed, then c fails
        with monkeypatch.context() as patch:
            patch.setattr(McpHttp, "add", add)
            failed = httpx2.post(f"{url}/config/reload", headers=MASTER, timeout=30)
        assert (failed.status_code, failed.json()["error"]["code"]) == (500, "reload_failed")
        assert failed.json()["error"]["message"].endswith("the running config stays: Boom: cannot start c")
        assert models(url) == ["old"]
        wait_for(lambda: {"a__echo", "b__echo"} <= hub_tools(url))  # `a` serves again
        assert not any(name.startswith("c__") for name in hub_tools(url))


@pytest.mark.anyio
async def test_a_sighup_reload_that_raises_anything_is_logged_without_secrets_and_the_handler_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []

    async def failing() -> dict[str, Any]:
        calls.append(1)
        raise Boom("cannot reach redis://:hunter22@127.0.0.1:1/0")

    reloader = SimpleNamespace(reload=failing, state=SimpleNamespace(config=SimpleNamespace(source="/etc/th.yaml")))
    with caplog.at_level(logging.ERROR, "toolhub.reload"):
        for _ in range(2):
            await reload._reload_logged(reloader)  # pyright: ignore[reportPrivateUsage, reportArgumentType]
    assert len(calls) == 2
    assert [r.getMessage() for r in caplog.records] == [
        "config reload of /etc/th.yaml failed, the running config stays: Boom: cannot reach redis://127.0.0.1:1/0"
    ] * 2  # a URL in the error is shown without its credentials
