"""2026-07-28 clients get a legacy upstream's sampling, elicitation and roots as input-required round trips."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
import yaml
from mcp import Client
from mcp.client.session import ClientRequestContext
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from hub.mcp.modern import Bridges
from tests.mcp.conftest import MASTER_KEY, hub_app, running, script_server, text_of
from tests.support.servers import ROOT

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")]


async def sample(context: ClientRequestContext, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    asked = params.messages[0].content
    text = asked.text if isinstance(asked, types.TextContent) else "?"
    return types.CreateMessageResult(role="assistant", content=types.TextContent(type="text", text=f"re: {text}"),
                                     model="m")  # fmt: skip


async def elicit(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"answer": "modern"})


async def roots(context: ClientRequestContext) -> types.ListRootsResult:
    return types.ListRootsResult(roots=[types.Root.model_validate({"uri": "file:///modern"})])


@contextlib.asynccontextmanager
async def modern_client(url: str, **options: Any) -> AsyncIterator[Client]:
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=30) as http:
        async with Client(streamable_http_client(url, http_client=http), mode="2026-07-28", **options) as client:
            yield client


async def test_a_modern_client_answers_sampling_elicitation_and_roots_of_a_legacy_upstream() -> None:
    servers = {"ask": script_server("ask_server.py"), "shared": script_server("shared_server.py")}
    with running(hub_app(servers)) as url:
        async with modern_client(f"{url}/mcp", sampling_callback=sample, elicitation_callback=elicit,
                                 list_roots_callback=roots) as client:  # fmt: skip
            assert client.protocol_version == "2026-07-28"
            sampled = await client.call_tool("ask__ask", {})
            elicited = await client.call_tool("shared__ask", {})
            listed = await client.call_tool("ask__roots", {})
            plain = await client.call_tool("ask__level", {})
            prompt = await client.get_prompt("ask__asked")
    assert [getattr(m.content, "text", None) for m in prompt.messages] == ["re: who are you?"]
    assert text_of(sampled) == "re: who are you?"
    assert text_of(elicited) == "accept: {'answer': 'modern'}"
    assert text_of(listed) == "file:///modern"
    assert text_of(plain) == "debug"


async def test_a_modern_client_without_sampling_gets_the_refusal_as_the_tool_result() -> None:
    with running(hub_app({"ask": script_server("ask_server.py")})) as url:
        async with modern_client(f"{url}/mcp") as client:
            refused = await client.call_tool("ask__ask", {})
    assert text_of(refused).startswith("refused:")


async def test_a_request_state_the_hub_did_not_issue_is_invalid_params() -> None:
    bridges = Bridges(lambda: None)
    with pytest.raises(MCPError) as raised:
        bridges.resume("forged", ("a", False), None)
    assert raised.value.error.code == types.INVALID_PARAMS


async def fastmcp_sample(messages: list[types.SamplingMessage], params: Any, context: Any) -> str:
    content = messages[0].content
    return f"fastmcp re: {content.text if isinstance(content, types.TextContent) else '?'}"


async def fastmcp_elicit(message: str, response_type: Any, params: Any, context: Any) -> dict[str, Any]:
    return {"answer": "from fastmcp"}


async def fastmcp_calls(transport: Any) -> tuple[str, list[str]]:
    from fastmcp import Client as FastMCPClient

    async with FastMCPClient(transport, sampling_handler=fastmcp_sample, elicitation_handler=fastmcp_elicit,
                             timeout=30) as client:  # fmt: skip
        version = client.protocol_version if hasattr(client, "protocol_version") else "?"
        with anyio.fail_after(20):  # `toolhub stdio` answers before its upstreams are up; they join with list_changed
            # A 2026-era client gets list changes only through subscriptions/listen: poll, bounded.
            while not {"ask__ask", "shared__ask"} <= {t.name for t in await client.list_tools()}:  # noqa: ASYNC110
                await anyio.sleep(0.05)
        sampled = await client.call_tool("ask__ask", {})
        elicited = await client.call_tool("shared__ask", {})
    texts = [c.text for r in (sampled, elicited) for c in r.content if isinstance(c, types.TextContent)]
    return str(version), texts


async def test_fastmcp_4_in_its_default_mode_answers_sampling_and_elicitation_on_mcp() -> None:
    pytest.importorskip("fastmcp")  # a dev dependency: its absence fails CI by the no-skip rule
    from fastmcp.client.transports import StreamableHttpTransport

    servers = {"ask": script_server("ask_server.py"), "shared": script_server("shared_server.py")}
    with running(hub_app(servers)) as url:
        transport = StreamableHttpTransport(f"{url}/mcp", headers={"Authorization": f"Bearer {MASTER_KEY}"})
        version, texts = await fastmcp_calls(transport)
    assert texts == ["fastmcp re: who are you?", "accept: {'answer': 'from fastmcp'}"]
    assert version in ("2026-07-28", "?")


async def test_fastmcp_4_in_its_default_mode_answers_sampling_and_elicitation_on_toolhub_stdio(
    tmp_path: Path,
) -> None:
    pytest.importorskip("fastmcp")
    from fastmcp.client.transports import StdioTransport

    config = tmp_path / "config.yaml"
    servers = {"ask": script_server("ask_server.py"), "shared": script_server("shared_server.py")}
    config.write_text(yaml.safe_dump({"general_settings": {"master_key": "sk-unused"}, "mcp_servers": servers}))
    transport = StdioTransport(sys.executable, ["-m", "hub", "stdio", "--config", str(config)], cwd=str(ROOT))
    _, texts = await fastmcp_calls(transport)
    assert texts == ["fastmcp re: who are you?", "accept: {'answer': 'from fastmcp'}"]
