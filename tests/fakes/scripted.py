"""In-memory fakes for the tool loop: a scripted model (a `Provider`) and a hub of Python tools (a `ToolHub`)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import anyio
import mcp_types

from hub.accounts.auth import Principal
from providers.base import JSON, ChatRequest, ProviderError

Calls = list[tuple[str, dict[str, Any]]]
Turn = str | Calls | tuple[str, Calls]
"""A text answer, the tool calls (name, arguments) of one assistant turn, or (text, calls): both, in both modes.

A turn of calls alone has no text when not streamed and "Round <n>. " when streamed (as some servers do)."""


def _parts(turn: Turn, calls: int, stream: bool) -> tuple[str | None, Calls]:
    if isinstance(turn, str):
        return turn, []
    if isinstance(turn, tuple):
        return turn
    return (f"Round {calls}. " if stream else None), turn


class ScriptedProvider:
    """Replays `turns` in order and records every request it got."""

    name = "scripted"

    def __init__(self, turns: list[Turn]) -> None:
        self.turns = list(turns)
        self.requests: list[JSON] = []
        self.calls = 0

    def _next(self, request: ChatRequest) -> Turn:
        self.requests.append(request.body)
        if not self.turns:
            raise ProviderError("script exhausted", status_code=502, provider=self.name)
        self.calls += 1
        return self.turns.pop(0)

    async def complete(self, request: ChatRequest) -> JSON:
        text, calls = _parts(self._next(request), self.calls, stream=False)
        message: JSON = {"role": "assistant", "content": text}
        if calls:
            message["tool_calls"] = [_call(self.calls, i, name, args) for i, (name, args) in enumerate(calls)]
        return {
            "id": f"chatcmpl-{self.calls}",
            "object": "chat.completion",
            "created": 1,
            "model": "scripted",
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }

    async def stream(self, request: ChatRequest) -> AsyncIterator[JSON]:
        text, calls = _parts(self._next(request), self.calls, stream=True)

        def chunk(delta: JSON, finish: str | None = None) -> JSON:
            return {
                "id": f"chatcmpl-{self.calls}",
                "object": "chat.completion.chunk",
                "created": self.calls,
                "model": "scripted",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        yield chunk({"role": "assistant", "content": ""})
        words = (text or "").split(" ")
        for n, word in enumerate(words if text else []):
            yield chunk({"content": word if n == len(words) - 1 else word + " "})
        if not calls:
            yield chunk({}, "stop")
        else:
            for i, (name, args) in enumerate(calls):
                call = _call(self.calls, i, name, args)
                arguments = call["function"]["arguments"]
                yield chunk(
                    {
                        "tool_calls": [
                            {
                                "index": i,
                                "id": call["id"],
                                "type": "function",
                                "function": {"name": name, "arguments": ""},
                            }
                        ]
                    }
                )
                for piece in (arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]):
                    yield chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
            yield chunk({}, "tool_calls")
        yield {
            "id": f"chatcmpl-{self.calls}",
            "object": "chat.completion.chunk",
            "created": self.calls,
            "model": "scripted",
            "choices": [],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }


def _call(turn: int, i: int, name: str, args: dict[str, Any]) -> JSON:
    return {"id": f"call_{turn}_{i}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}


@dataclass(frozen=True)
class FakeTool:
    name: str
    server: str
    original_name: str
    description: str | None = "a tool"
    input_schema: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


ToolFn = Callable[[dict[str, Any]], Awaitable[mcp_types.CallToolResult]]


class FakeHub:
    """A `ToolHub` over Python functions; records calls (and their request ids) and whether any was cancelled.

    `down` servers are configured but list no tools; `starting` servers list theirs only once `wait_started` ran.
    """

    separator = "__"

    def __init__(
        self,
        tools: dict[str, ToolFn],
        timeout: float = 5.0,
        *,
        down: Collection[str] = (),
        starting: Collection[str] = (),
        aliases: dict[str, str] | None = None,
    ) -> None:
        self.fns = tools
        self.aliases = aliases or {}
        """Tool-name prefix -> server, for servers configured with an `alias`."""
        self.timeout = timeout
        self.down = set(down)
        self.starting = set(starting)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.request_ids: list[str] = []
        self.cancelled = 0

    def server_names(self) -> list[str]:
        return sorted({self._server(name) for name in self.fns} | self.down | self.starting)

    def prefixes(self) -> dict[str, str]:
        by_alias = {server: prefix for prefix, server in self.aliases.items()}
        return {s: by_alias.get(s, s) + self.separator for s in self.server_names()}

    def _server(self, name: str) -> str:
        prefix = name.split("__")[0]
        return self.aliases.get(prefix, prefix)

    async def wait_started(self, servers: Collection[str]) -> None:
        self.starting -= set(servers)

    def tools(self, principal: Principal, servers: Collection[str] | None = None) -> list[FakeTool]:
        out = []
        for name in sorted(self.fns):
            server, original = self._server(name), name.partition("__")[2]
            if server in self.down or server in self.starting:
                continue
            if (servers is None or server in servers) and principal.may_use_server(server):
                out.append(FakeTool(name, server, original))
        return out

    async def call_tool(
        self,
        name: str,
        arguments: dict[str, Any],
        principal: Principal,
        *,
        timeout: float | None = None,
        request_id: str = "",
    ) -> mcp_types.CallToolResult:
        self.calls.append((name, arguments))
        self.request_ids.append(request_id)
        try:
            return await self.fns[name](arguments)
        except anyio.get_cancelled_exc_class():
            self.cancelled += 1
            raise

    def server_call_timeout(self, name: str) -> float:
        return self.timeout


def text_result(text: str, *, is_error: bool = False) -> mcp_types.CallToolResult:
    return mcp_types.CallToolResult(content=[mcp_types.TextContent(type="text", text=text)], is_error=is_error)
