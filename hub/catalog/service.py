"""`CatalogService`: what the MCP server, REST and the tool loop call, so that each of their hooks stays a few lines.

One service per process (`state.extras["catalog"]`, and `McpHub.catalog_service` for the MCP server), opened by
`catalog_extension` after the MCP hub and the store: one search index per view (`None`: the aggregated catalog,
else `/mcp/<server>`), synced when that view's catalog object changes (free when it did not), the result store when
a database is configured, and a task that deletes expired results every `PURGE_INTERVAL` seconds.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import mcp_types as types

from hub.catalog.dispatch import Call, handle_meta_call
from hub.catalog.index import Searchable, ToolIndex
from hub.catalog.meta import (
    DEFAULT_THRESHOLD,
    READ_RESULT,
    Exposure,
    Mode,
    exposure,
    function_tool,
    meta_clash,
    meta_functions,
    meta_tools,
    pinned,
)
from hub.catalog.results import (
    DEFAULT_TTL,
    NOTICE_MARK,
    ResultError,
    ResultStore,
    handle_of,
    read_resource,
    shrink_result,
    shrink_text,
)
from hub.config import Config, ConfigError
from hub.state import HubState
from hub.storage import Store, open_store

logger = logging.getLogger("toolhub.catalog")
PURGE_INTERVAL = 300.0


class Listed(Searchable, Protocol):
    """A tool of a view as `hub.mcp.catalog.ToolInfo` has it: with its exposed MCP `Tool`."""

    @property
    def tool(self) -> types.Tool: ...


@dataclass(frozen=True, slots=True)
class CatalogSettings:
    """`general_settings.tool_exposure`, `tool_exposure_threshold`, `always_expose`, `max_tool_result_chars` and
    `tool_result_ttl_seconds`, resolved."""

    mode: Mode | None = None
    threshold: int = DEFAULT_THRESHOLD
    always_expose: tuple[str, ...] = ()
    max_result_chars: int = 20_000
    result_ttl: float = DEFAULT_TTL

    @classmethod
    def defaults_for(cls, config: Config) -> CatalogSettings:
        """Defaults, with the result limit the tool loop already uses."""
        return cls(max_result_chars=config.max_tool_result_chars)

    @classmethod
    def from_config(cls, config: Config) -> CatalogSettings:
        """The `general_settings` keys as configured."""
        return cls(config.tool_exposure, config.tool_exposure_threshold, config.always_expose,
                   config.max_tool_result_chars, config.tool_result_ttl_seconds)  # fmt: skip


class CatalogService:
    """Tool search and result handles for every caller of the hub."""

    def __init__(self, settings: CatalogSettings, results: ResultStore | None = None) -> None:
        self.settings = settings
        self.results = results
        self._indexes: dict[str | None, ToolIndex] = {}

    def reconfigure(self, settings: CatalogSettings) -> None:
        """A config reload: the new mode, threshold, pins, result limit and TTL from the next call on (results stored
        before keep the expiry they were given)."""
        self.settings = settings
        if self.results is not None:
            self.results.ttl, self.results.read_limit = settings.result_ttl, _read_limit(settings)

    def index(self, view: str | None, catalog_tools: Sequence[Searchable]) -> ToolIndex:
        """The search index of a view, synced with its whole catalog (`Catalog.tools`, replaced on every change)."""
        index = self._indexes.setdefault(view, ToolIndex())
        index.sync(catalog_tools)
        return index

    def exposure(self, client_name: str | None, visible_count: int) -> Exposure:
        return exposure(self.settings.mode, self.settings.threshold, client_name, visible_count)

    def mcp_tools(self, visible: Sequence[Listed], client_name: str | None) -> list[types.Tool]:
        """`tools/list` for a client: every visible tool, or the meta-tools and the pinned ones (search mode)."""
        if self.exposure(client_name, len(visible)) == "all":
            return [t.tool for t in visible]
        found = pinned(visible, self.settings.always_expose)
        return meta_tools(results=self.results is not None) + [t.tool for t in found]

    def loop_tools(self, visible: Sequence[Searchable], reading: bool = False, client_name: str | None = None,
                   others: int = 0) -> list[dict[str, Any]]:  # fmt: skip
        """The tool loop's hub tool definitions: every visible tool, or in search mode the meta-tools and the pinned
        tools; equal bytes on every turn for equal tools. `hub__read_result` comes with the meta-tools, and in
        `all` mode once the conversation holds a stored result (`reading`): from then on, on every turn.

        `client_name` is the provider of the model (`openai`: at most 128 tools per request) and `others` the
        client's own tools sent with the hub's: the limit is on all of them."""
        results = self.results is not None
        if self.exposure(client_name, len(visible) + others) == "all":
            reader = meta_functions()[-1:] if results and reading else []  # hub__read_result is the last
            return [function_tool(t) for t in visible] + reader
        found = pinned(visible, self.settings.always_expose)
        return meta_functions(results=results) + [function_tool(t) for t in found]

    @staticmethod
    def holds_results(messages: Any) -> bool:
        """Whether a conversation (chat messages) holds a tool result the hub stored, by its notice."""
        if not isinstance(messages, list):
            return False
        for message in messages:  # pyright: ignore[reportUnknownVariableType]
            content = message.get("content") if isinstance(message, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
            if isinstance(content, str) and NOTICE_MARK in content:
                return True
            if isinstance(content, list) and any(NOTICE_MARK in str(part) for part in content):  # pyright: ignore[reportUnknownVariableType]
                return True
        return False

    async def call_meta(self, name: str, arguments: Mapping[str, Any] | None, visible: Sequence[Searchable],
                        catalog_tools: Sequence[Searchable] | None, call: Call, owner: str,
                        view: str | None = None) -> types.CallToolResult:  # fmt: skip
        """A meta-tool call of a caller who may see `visible`, out of the view's `catalog_tools` (None where the
        caller has no catalog at hand, as in the tool loop: the view's index then takes in `visible`, keeping the
        tools others saw, which their scopes filter out)."""
        results = (self.results, owner) if self.results is not None else None
        if catalog_tools is None:
            index = self._indexes.setdefault(view, ToolIndex())
            index.sync(visible, prune=False)
        else:
            index = self.index(view, catalog_tools)
        return await handle_meta_call(name, arguments, visible, call, index=index, results=results)

    async def fit_result(self, result: types.CallToolResult, owner: str, *, server: str = "",
                         tool: str = "") -> types.CallToolResult:  # fmt: skip
        """An MCP result over the limit: its head and a `resource_link` (unchanged without a store, or when it is
        what `hub__read_result` read)."""
        if self.results is None or tool == READ_RESULT:
            return result
        return await shrink_result(result, self.settings.max_result_chars, self.results, owner, server=server,
                                   tool=tool)  # fmt: skip

    async def fit_text(self, text: str, max_chars: int, owner: str, *, server: str = "",
                       tool: str = "") -> tuple[str, int]:  # fmt: skip
        """The tool loop's text over `max_chars`: stored, its head and a handle (0 characters lost); without a store,
        or for `hub__read_result` itself, cut as before (the number of characters removed)."""
        if self.results is not None and tool != READ_RESULT:
            return (await shrink_text(text, max_chars, self.results, owner, server=server, tool=tool))[0], 0
        if len(text) <= max_chars:
            return text, 0
        removed = len(text) - max_chars
        return (
            f"{text[:max_chars]}\n[Toolhub cut this tool result: {removed} of {len(text)} characters removed]",
            removed,
        )

    async def read_resource(self, uri: str, owner: str) -> types.ReadResourceResult | None:
        """`resources/read` of a stored result; None for any other URI (the hub forwards it).

        Raises:
            ResultError: unknown to this owner, or expired (answer -32002).
        """
        if handle_of(uri) is None:
            return None
        if self.results is None:
            raise ResultError(f"Resource not found: {uri}", "not_found")
        return await read_resource(uri, owner, self.results)


def check_namespaces(config: Config) -> None:
    """Refuse MCP servers whose tool names would share the meta-tools' names (`hub__search_tools`, ...).

    Raises:
        ConfigError: naming the server (or its `alias`), as a config error at start or reload.
    """
    for name, server in config.mcp_servers.items():
        alias = server.spec.alias
        problem = meta_clash(alias or name, config.mcp_tool_separator)
        if problem is not None:
            raise ConfigError(f"mcp_servers.{name}" + (".alias" if alias else ""), problem)


def _read_limit(settings: CatalogSettings) -> int:
    """One read's default and largest size: under the result limit, with room for the read's own header."""
    return max(100, settings.max_result_chars - 200)


async def _purge(results: ResultStore) -> None:
    while True:
        await anyio.sleep(PURGE_INTERVAL)
        try:
            await results.purge_expired()
        except Exception:  # a database outage must not end the task: the next round retries
            logger.exception("catalog: deleting expired tool results failed")


def catalog_extension(
    settings: Callable[[Config], CatalogSettings] = CatalogSettings.defaults_for,
) -> Callable[[HubState], contextlib.AbstractAsyncContextManager[None]]:
    """The lifespan extension, after the MCP hub and the store: `state.extras["catalog"]`, `McpHub.catalog_service`."""

    @contextlib.asynccontextmanager
    async def extension(state: HubState) -> AsyncIterator[None]:
        check_namespaces(state.config)
        async with running_catalog(settings(state.config), state.extras.get("store")) as service:
            state.extras["catalog"] = service
            hub = state.extras.get("mcp")
            if hub is not None and hasattr(hub, "catalog_service"):
                hub.catalog_service = service
            yield

    return extension


@contextlib.asynccontextmanager
async def running_catalog(settings: CatalogSettings, store: Store | None) -> AsyncIterator[CatalogService]:
    """A service over an open store (None: results are not stored), deleting expired results while it runs."""
    results = ResultStore(store, ttl=settings.result_ttl, read_limit=_read_limit(settings)) \
        if store is not None else None  # fmt: skip
    service = CatalogService(settings, results)
    async with anyio.create_task_group() as tg:
        if results is not None:
            tg.start_soon(_purge, results)
        try:
            yield service
        finally:
            tg.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def standalone_catalog(config: Config) -> AsyncIterator[CatalogService]:
    """The service for `toolhub stdio`, which has no app lifespan: results are stored only in a database the config
    names (`general_settings.database_url`; no implicit `toolhub.db` in whatever directory a desktop client chose)."""
    settings = CatalogSettings.from_config(config)
    if config.database_url is None:
        async with running_catalog(settings, None) as service:
            yield service
        return
    store = open_store(config.database_url)
    await store.connect()
    try:
        await store.migrate()
        async with running_catalog(settings, store) as service:
            yield service
    finally:
        await store.aclose()
