"""The aggregated catalog: exposed names, aliases for names a model provider would reject, and filtering.

Every exposed tool and prompt name is `<prefix><separator><original>` when that fits `^[a-zA-Z0-9_-]{1,64}$`;
otherwise it becomes a stable alias (invalid characters replaced, cut, plus 8 hex digits of a SHA-256 of the full
name), so the same upstream tool always gets the same name. On `/mcp/<server>` valid tool names stay original and
invalid ones get the same kind of alias (digest of `server\0original`). Names that collide (`a` + `b__c` vs
`a__b` + `c`, or an alias equal to a real name) are never first-come-first-served: every colliding entry gets an
alias whose digest is taken from `server\0original`, so the result does not depend on listing order, and a warning
is logged. The hub resolves names through its maps, never by parsing them; the original name and server are kept
in the exposed tool's `_meta`.

Resource URIs and templates keep their upstream form unless two servers offer the same one: then each server's
copy is exposed as `toolhub://<server>/<original>` (`namespaced`), which the hub maps back before forwarding a read,
subscription or completion, so every server's copy stays reachable and a subscription reaches the right upstream.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

import mcp_types as types

from hub.accounts.auth import Principal
from hub.mcp.tasks import without_task_requirement, without_task_support

TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_NAME = 64
DEFAULT_SEPARATOR = "__"
NAMESPACE = "toolhub://"
META_ORIGINAL_NAME = "io.toolhub/original_name"
META_SERVER = "io.toolhub/server"
_INVALID = re.compile(r"[^a-zA-Z0-9_-]")

logger = logging.getLogger("toolhub.mcp")


def exposed_name(prefix: str, original: str, separator: str = DEFAULT_SEPARATOR) -> str:
    """The client-visible name of an upstream tool or prompt; valid for every LLM provider and stable."""
    full = f"{prefix}{separator}{original}" if prefix else original
    if TOOL_NAME.match(full):
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    cleaned = _INVALID.sub("_", full)[: MAX_NAME - len(digest) - 1]
    return f"{cleaned}_{digest}"


def alias(display: str, server: str, original: str, digits: int = 8) -> str:
    """A valid name for a tool whose natural name is invalid or taken: `display` cleaned and cut, plus a digest of
    `server\0original` (stable, and different for every server/tool pair)."""
    digest = hashlib.sha256(f"{server}\0{original}".encode()).hexdigest()[:digits]
    cleaned = _INVALID.sub("_", display)[: MAX_NAME - digits - 1]
    return f"{cleaned}_{digest}"


def unique_names(entries: Sequence[tuple[str, str, str, str]]) -> list[str]:
    """Final names for (natural name, display, server, original) entries: every colliding one gets an `alias`."""
    names = [natural for natural, _, _, _ in entries]
    for digits in (8, 16):  # a second, longer round only if an alias itself meets a real name
        counts = Counter(names)
        clashing = [i for i, name in enumerate(names) if counts[name] > 1]
        for i in clashing:
            _, display, server, original = entries[i]
            names[i] = alias(display, server, original, digits)
            logger.warning("MCP name collision on %r: tool %r of server %r is exposed as %r",
                           entries[i][0], original, server, names[i])  # fmt: skip
    return names


def namespaced(server: str, uri: str) -> str:
    """The exposed form of a resource URI (or template) that another server offers too."""
    return f"{NAMESPACE}{server}/{uri}"


def split_namespaced(uri: str) -> tuple[str, str] | None:
    """(server, original URI) of a `namespaced` URI; None for any other URI."""
    if not uri.startswith(NAMESPACE):
        return None
    server, slash, original = uri[len(NAMESPACE) :].partition("/")
    return (server, original) if slash and server else None


def name_allowed(name: str, allowed: Sequence[str] | None, disallowed: Sequence[str] | None) -> bool:
    """`allowed_tools` / `disallowed_tools` of a server: exact names or shell-style patterns (`get_*`)."""
    if allowed is not None and not any(fnmatchcase(name, pattern) for pattern in allowed):
        return False
    return not (disallowed and any(fnmatchcase(name, pattern) for pattern in disallowed))


@dataclass(frozen=True, slots=True)
class Listing:
    """What one healthy upstream offers, as last listed."""

    server: str
    prefix: str
    tools: Sequence[types.Tool] = ()
    resources: Sequence[types.Resource] = ()
    templates: Sequence[types.ResourceTemplate] = ()
    prompts: Sequence[types.Prompt] = ()
    allowed_tools: Sequence[str] | None = None
    disallowed_tools: Sequence[str] | None = None
    tasks: bool = True
    """Whether the server runs task-augmented `tools/call` (`hub.mcp.tasks.runs_tasks`): if not, no tool is listed
    with `taskSupport`."""


@dataclass(frozen=True, slots=True)
class ToolInfo:
    """One tool as the hub exposes it."""

    name: str
    """The name clients call (prefixed in the aggregated catalog, original on `/mcp/<server>`)."""
    server: str
    original_name: str
    qualified_name: str
    """The aggregated-catalog name, whatever the view."""
    description: str | None
    input_schema: dict[str, Any]
    tool: types.Tool = field(repr=False)
    """The exposed MCP `Tool` (renamed, with the original kept in `_meta`)."""


@dataclass(frozen=True, slots=True)
class PromptInfo:
    name: str
    server: str
    original_name: str
    prompt: types.Prompt = field(repr=False)


def visible(principal: Principal, server: str, tool: str | None = None) -> bool:
    """May this caller see (and call) the server, and this tool of it (by its upstream name)?"""
    if tool is None:
        return principal.may_use_server(server)
    return principal.may_use_tool(server, tool)


@dataclass(frozen=True)
class Catalog:
    """An immutable snapshot of what the hub serves; rebuilt whenever an upstream's lists change."""

    tools: tuple[ToolInfo, ...] = ()
    prompts: tuple[PromptInfo, ...] = ()
    resources: tuple[tuple[str, types.Resource], ...] = ()
    templates: tuple[tuple[str, types.ResourceTemplate], ...] = ()
    tools_by_name: Mapping[str, ToolInfo] = field(default_factory=dict[str, ToolInfo])
    prompts_by_name: Mapping[str, PromptInfo] = field(default_factory=dict[str, PromptInfo])
    resource_owner: Mapping[str, str] = field(default_factory=dict[str, str])
    """Exposed resource URI -> server, for URIs exposed as the upstream lists them."""
    clashing: frozenset[tuple[str, str]] = frozenset()
    """(server, original URI or template) pairs exposed `namespaced`."""

    @classmethod
    def build(
        cls, listings: Iterable[Listing], separator: str = DEFAULT_SEPARATOR, *, prefixed: bool = True
    ) -> Catalog:
        """Merge listings in a deterministic order (by exposed name); `prefixed=False` keeps original names."""
        listings = sorted(listings, key=lambda item: item.server)
        tools: dict[str, ToolInfo] = {}
        prompts: dict[str, PromptInfo] = {}
        offered = [(listing, tool) for listing in listings for tool in listing.tools
                   if name_allowed(tool.name, listing.allowed_tools, listing.disallowed_tools)]  # fmt: skip
        names = unique_names([_natural(listing, tool.name, separator, prefixed) for listing, tool in offered])
        for (listing, tool), name in zip(offered, names, strict=True):
            tools.setdefault(name, _tool_info(listing, tool, name, separator))  # a clash is left only past 2 rounds
        offered_prompts = [(listing, prompt) for listing in listings for prompt in listing.prompts]
        if prefixed:
            names = unique_names([_natural(listing, p.name, separator, True) for listing, p in offered_prompts])
        else:
            names = [prompt.name for _, prompt in offered_prompts]
        for (listing, prompt), name in zip(offered_prompts, names, strict=True):
            renamed = prompt.model_copy(update={"name": name})
            prompts.setdefault(name, PromptInfo(name, listing.server, prompt.name, renamed))
        resources, templates, owner, clashing = _resources(listings, prefixed)
        ordered = dict(sorted(tools.items()))
        ordered_prompts = dict(sorted(prompts.items()))
        return cls(
            tools=tuple(ordered.values()),
            prompts=tuple(ordered_prompts.values()),
            resources=tuple(sorted(resources, key=lambda item: item[1].uri)),
            templates=tuple(sorted(templates, key=lambda item: (item[0], item[1].uri_template))),
            tools_by_name=ordered,
            prompts_by_name=ordered_prompts,
            resource_owner=owner,
            clashing=clashing,
        )

    def owner_of_uri(self, uri: str) -> tuple[str, str] | None:
        """(server, upstream URI) of an exposed resource URI: a namespaced one, a listed resource, else the
        template with the longest literal prefix."""
        split = split_namespaced(uri)
        if split is not None:
            return split if any(server == split[0] for server, _ in self.clashing) else None
        server = self.resource_owner.get(uri)
        if server is not None:
            return server, uri
        best: tuple[int, str] | None = None
        for name, template in self.templates:
            literal = template.uri_template.split("{", 1)[0]
            if uri.startswith(literal) and (best is None or len(literal) > best[0]):
                best = (len(literal), name)
        return (best[1], uri) if best else None

    def exposed_uri(self, server: str, uri: str) -> str:
        """How clients see `server`'s resource `uri` (namespaced when another server offers it too)."""
        if (server, uri) in self.clashing:
            return namespaced(server, uri)
        for other, template in self.clashing:
            literal = template.split("{", 1)[0]
            if other == server and "{" in template and uri.startswith(literal):
                return namespaced(server, uri)
        return uri


def _resources(listings: Sequence[Listing], prefixed: bool) -> tuple[
    list[tuple[str, types.Resource]], list[tuple[str, types.ResourceTemplate]], dict[str, str],
    frozenset[tuple[str, str]]]:  # fmt: skip
    """Resources and templates of every listing, each once per server; those offered by two servers namespaced."""
    offered = {listing.server: {r.uri: r for r in listing.resources} for listing in listings}
    shapes = {listing.server: {t.uri_template: t for t in listing.templates} for listing in listings}
    uri_count = Counter(uri for uris in offered.values() for uri in uris)
    template_count = Counter(t for ts in shapes.values() for t in ts)
    clashing = frozenset(
        [(s, u) for s, uris in offered.items() for u in uris if prefixed and uri_count[u] > 1]
        + [(s, t) for s, ts in shapes.items() for t in ts if prefixed and template_count[t] > 1]
    )
    resources: list[tuple[str, types.Resource]] = []
    templates: list[tuple[str, types.ResourceTemplate]] = []
    owner: dict[str, str] = {}
    for server, uris in offered.items():
        for uri, resource in uris.items():
            exposed = namespaced(server, uri) if (server, uri) in clashing else uri
            resources.append((server, resource.model_copy(update={"uri": exposed}) if exposed != uri else resource))
            if exposed == uri:
                owner[uri] = server
    for server, ts in shapes.items():
        for shape, template in ts.items():
            if (server, shape) in clashing:
                template = template.model_copy(update={"uri_template": namespaced(server, shape)})
            templates.append((server, template))
    if clashing:
        logger.warning("MCP resource URIs offered by several servers are namespaced: %s",
                       ", ".join(sorted(namespaced(s, u) for s, u in clashing)))  # fmt: skip
    return resources, templates, owner, clashing


def _natural(listing: Listing, original: str, separator: str, prefixed: bool) -> tuple[str, str, str, str]:
    """(natural name, display, server, original) of a tool: prefixed, or original unless that is invalid."""
    if prefixed:
        display = f"{listing.prefix}{separator}{original}" if listing.prefix else original
        return exposed_name(listing.prefix, original, separator), display, listing.server, original
    natural = original if TOOL_NAME.match(original) else alias(original, listing.server, original)
    return natural, original, listing.server, original


def _tool_info(listing: Listing, tool: types.Tool, name: str, separator: str) -> ToolInfo:
    qualified = exposed_name(listing.prefix, tool.name, separator)
    meta = {**(tool.meta or {}), META_ORIGINAL_NAME: tool.name, META_SERVER: listing.server}
    shown = without_task_requirement(tool) if listing.tasks else without_task_support(tool)
    exposed = shown.model_copy(update={"name": name, "meta": meta})
    return ToolInfo(name, listing.server, tool.name, qualified, tool.description, tool.input_schema, exposed)
