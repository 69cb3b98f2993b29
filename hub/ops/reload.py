"""Config reload without a restart: `SIGHUP` or `POST /config/reload` (master key) re-reads the config file.

Models, router settings (retries, fallbacks, strategy), prices and the per-request limits are swapped at once: a
request that already resolved its route finishes on the old set. A file that would not start is refused with the
error start would give, and the running config stays; so it does when the reload fails in any other way, as the new
router and MCP servers start (`Reloader.reload`). MCP servers are synced (`McpHttp.sync`: added ones start,
removed ones stop, unchanged ones keep their sessions; `/mcp`, `/mcp/<server>` and `/sse` take the new body limit).
Tool search and result handles (`tool_exposure`, `tool_exposure_threshold`, `always_expose`,
`tool_result_ttl_seconds`, `max_tool_result_chars`) apply from the next call on. Settings read only at start (keys,
database, Redis, logging, cache) keep their running values; the answer lists those that differ ("restart_needed").
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response

from hub.catalog.service import CatalogSettings, check_namespaces
from hub.config import Config, ConfigError, load_config
from hub.errors import BadRequest, HubError, PermissionDenied, json_response
from hub.gateway.routing import ModelRouter
from hub.mcp.redact import hide_urls
from hub.scale.startup import root_cause
from hub.state import HubState, authenticate, hub_state

logger = logging.getLogger("toolhub.reload")
RELOADED = frozenset(
    (
        "models router max_request_bytes max_tool_rounds max_tool_result_chars tool_loop_keepalive_seconds ignored"
        " mcp_servers tool_exposure tool_exposure_threshold always_expose tool_result_ttl_seconds"
    ).split()
)
_NOT_COMPARED = frozenset({"source", "worker_url", "worker_registry"})  # set by `serve`, never in the file


class Reloader:
    """Owns the running router's background work, so that a reload can start the new one and stop the old."""

    def __init__(self, state: HubState) -> None:
        self.state = state
        self._lock = anyio.Lock()
        self._router_work = contextlib.AsyncExitStack()

    async def start(self) -> None:
        await self._router_work.enter_async_context(self.state.router.running(self.state.extras))

    async def aclose(self) -> None:
        await self._router_work.aclose()

    async def reload(self) -> dict[str, Any]:
        """Re-read the file and swap what can be swapped; returns what changed.

        The new router starts first, then the MCP servers are synced, then config and router are swapped at once: a
        failure on the way leaves the running config, router and MCP servers as they were (the MCP sync is undone).

        Raises:
            ConfigError: the file would not start; nothing was changed.
            Exception: whatever else failed (the new router's background work, an MCP server that could not be
                added); nothing was changed either.
        """
        async with self._lock:
            old = self.state.config
            if old.source == "<memory>":
                raise ConfigError("", "this gateway was not started from a config file: nothing to reload")
            new = load_config(old.source)
            check_namespaces(new)  # a server named like the meta-tools (`hub`): refused before anything changes
            kept = {f.name: getattr(old, f.name) for f in dataclasses.fields(old) if f.name not in RELOADED}
            restart = sorted(k for k, v in kept.items() if k not in _NOT_COMPARED and getattr(new, k) != v)
            applied, settings = dataclasses.replace(new, **kept), CatalogSettings.from_config(new)
            mcp: dict[str, list[str]] = {}
            with anyio.CancelScope(shield=True):  # once begun, never left halfway (a client gone, a shutdown)
                mcp = await self._apply(applied, old)
            if (catalog := self.state.extras.get("catalog")) is not None:  # tool search and result handles
                catalog.reconfigure(settings)
        added, removed = sorted(new.models.keys() - old.models.keys()), sorted(old.models.keys() - new.models.keys())
        logger.info("config reloaded from %s: models added %s, removed %s; restart needed for %s",
                    old.source, added, removed, restart or "nothing")  # fmt: skip
        return {"reloaded": True, "models": sorted(new.models), "added": added, "removed": removed,
                "mcp_servers": mcp, "restart_needed": restart}  # fmt: skip

    async def _apply(self, config: Config, old: Config) -> dict[str, list[str]]:
        """Start `config`'s router, sync the MCP servers to it, then swap; on a failure, undo and re-raise."""
        router = ModelRouter.from_config(config, self.state.pool)
        work = contextlib.AsyncExitStack()
        try:
            await work.enter_async_context(router.running(self.state.extras))
            mcp = await self._sync_mcp(config, old)
        except Exception:
            await work.aclose()  # the new router's series leave /metrics again
            raise
        old_work = self._router_work
        self.state.config, self.state.router, self._router_work = config, router, work
        try:
            await old_work.aclose()  # ends the old router's background work and removes its /metrics series
        except Exception:  # the new config serves already: a reload that took is not reported as failed
            logger.exception("config reload: stopping the previous router's background work failed")
        return mcp

    async def _sync_mcp(self, config: Config, old: Config) -> dict[str, list[str]]:
        """Added servers start, removed ones stop, the rest go on; a sync that fails is undone (back to `old`'s)."""
        mcp_http = self.state.extras.get("mcp_http")
        if mcp_http is None:
            return {}
        try:
            return await mcp_http.sync(config.mcp_servers, config.max_request_bytes)
        except Exception:
            try:
                await mcp_http.sync(old.mcp_servers, old.max_request_bytes)
            except Exception:
                logger.exception("config reload: restoring the running MCP servers failed")
            raise


@contextlib.asynccontextmanager
async def reloading(state: HubState) -> AsyncIterator[Reloader]:
    """The reloader for the app's lifespan; SIGHUP reloads too when the app runs in the main thread."""
    reloader = Reloader(state)
    await reloader.start()
    state.extras["reloader"] = reloader
    hup = asyncio.Event()  # set by the signal handler, which runs outside any task
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_on_each, hup, reloader)
            with _on_sighup(hup.set):
                yield reloader
            tasks.cancel_scope.cancel()
    finally:
        await reloader.aclose()


async def _on_each(hup: asyncio.Event, reloader: Reloader) -> None:
    while True:
        await hup.wait()
        hup.clear()
        await _reload_logged(reloader)


@contextlib.contextmanager
def _on_sighup(callback: Callable[[], None]) -> Iterator[None]:
    """SIGHUP calls `callback` while inside; then the disposition and signal mask from before come back.

    A worker of `serve --workers N` starts with SIGHUP blocked (hub/scale/supervisor.py): a reload sent while it
    was starting is pending, and is delivered when the handler is in place and SIGHUP unblocked here.
    """
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGHUP)
    try:
        loop.add_signal_handler(signal.SIGHUP, callback)
    except (ValueError, RuntimeError, NotImplementedError):  # not the main thread, or no signals here
        yield
        return
    was_blocked = signal.SIGHUP in signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGHUP])
    try:
        yield
    finally:
        if was_blocked:  # a SIGHUP while the worker stops stays pending instead of killing it
            signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGHUP])
        loop.remove_signal_handler(signal.SIGHUP)  # leaves SIG_DFL, whatever was there before
        if previous is not None:
            signal.signal(signal.SIGHUP, previous)


async def _reload_logged(reloader: Reloader) -> None:
    """A SIGHUP reload: whatever fails is logged and the running config stays. Nothing may escape: the error would
    end the lifespan's task group, and with it the database, the MCP hub and this SIGHUP handler."""
    source = reloader.state.config.source
    try:
        await reloader.reload()
    except ConfigError as exc:
        logger.error("config reload of %s refused, the running config stays: %s", source, _described(exc))
    except Exception as exc:
        logger.error("config reload of %s failed, the running config stays: %s", source, _cause(exc), exc_info=exc)


async def reload_endpoint(request: Request) -> Response:
    """`POST /config/reload`: master key only; a bad file is a 400 naming the key, as at start; any other failure a
    500 `reload_failed` naming the cause (the running config stays either way)."""
    if not (await authenticate(request)).is_master:
        raise PermissionDenied("Only the master key may reload the config.", code="master_key_required")
    reloader: Reloader = hub_state(request).extras["reloader"]
    source = reloader.state.config.source
    try:
        return json_response(await reloader.reload())
    except ConfigError as exc:
        message = f"config reload of {source} refused, the running config stays: {_described(exc)}"
        raise BadRequest(message, param=exc.path or None, code="invalid_config") from exc
    except Exception as exc:
        logger.error("config reload of %s failed, the running config stays", source, exc_info=exc)
        message = f"config reload of {source} failed, the running config stays: {_cause(exc)}"
        raise HubError(message, code="reload_failed") from exc


def _cause(exc: BaseException) -> str:
    """The failure's type and text (the one error inside task-group wrappers rather than the group), any URL in it
    without credentials or query: a Redis or upstream error may quote one."""
    exc = root_cause(exc)
    return hide_urls(f"{type(exc).__name__}: {exc}")


def _described(exc: ConfigError) -> str:
    """As the command line says it: the key's path first when there is one, else the message (naming the file)."""
    return f"config error at {exc}" if exc.path else str(exc)
