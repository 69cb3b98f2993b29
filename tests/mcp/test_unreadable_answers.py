"""A stdio upstream's answer the strict parser refuses: read leniently when it is JSON (a lone surrogate escape, bytes
that are no UTF-8), else the call it names fails at once; never a wait until `call_timeout`."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from hub.accounts.auth import MASTER
from hub.config import parse_config
from hub.mcp.hub import McpHub
from tests.mcp.conftest import script_server, text_of

pytestmark = pytest.mark.anyio


@contextlib.asynccontextmanager
async def answers_hub() -> AsyncIterator[McpHub]:
    servers = {"ans": script_server("answers_server.py", call_timeout=60)}
    hub = McpHub(parse_config({"mcp_servers": servers}, {}).mcp_servers)
    async with hub.running():
        assert await hub.wait_ready()
        yield hub


async def call(hub: McpHub, name: str, arguments: dict[str, Any] | None = None) -> types.CallToolResult:
    with anyio.fail_after(5):  # the call_timeout is 60 s
        return await hub.call_tool(f"ans__{name}", arguments or {}, MASTER)


@pytest.mark.parametrize(("tool", "text"), [("surrogate", "a\ufffd"), ("badutf8", "a\ufffd\ufffdb")])
async def test_an_answer_that_is_json_only_to_a_lenient_reader_is_read(tool: str, text: str) -> None:
    async with answers_hub() as hub:
        direct = await call(hub, tool)
        params = types.CallToolRequestParams(name=tool, arguments={})
        with anyio.fail_after(5):  # through the SDK's session
            session = await hub.upstreams["ans"].request(types.CallToolRequest(params=params), types.CallToolResult)
    assert text_of(direct) == text and text_of(session) == text


@pytest.mark.parametrize(("tool", "reason"), [("deep", "recursion limit exceeded"), ("garbage", "EOF")])
async def test_an_answer_that_cannot_be_read_fails_its_call_at_once(
    tool: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with answers_hub() as hub:
        with caplog.at_level(logging.WARNING, logger="toolhub.mcp"):
            failed = await call(hub, tool)
        warnings = [r for r in caplog.records if "cannot be read" in r.getMessage()]
        params = types.CallToolRequestParams(name=tool, arguments={})
        with anyio.fail_after(5), pytest.raises(MCPError) as raised:
            await hub.upstreams["ans"].request(types.CallToolRequest(params=params), types.CallToolResult)
        after = await call(hub, "pid")
    assert failed.is_error and "answer could not be read" in text_of(failed) and reason in text_of(failed)
    assert raised.value.error.code == types.PARSE_ERROR
    assert text_of(after).isdigit()  # the session goes on
    assert len(warnings) == 1


async def test_a_line_that_names_no_request_is_one_warning_and_the_answer_after_it_counts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with answers_hub() as hub:
        with caplog.at_level(logging.WARNING, logger="toolhub.mcp"):
            result = await call(hub, "garbage_anonymous")
    assert text_of(result) == "after garbage"
    assert len([r for r in caplog.records if r.name == "toolhub.mcp"]) == 1
