"""Server-to-client requests of a shared upstream session reach the downstream session whose call caused them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.client.session import ClientRequestContext

from hub.accounts.auth import Principal
from tests.mcp.conftest import keyed_hub_app, mcp_client, running, script_server, text_of
from tests.mcp.servers.ask_server import http_app
from tests.support.servers import serve_app

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")]
KEYS = {"sk-a": Principal(key_id="a")}


class Downstream:
    """One downstream client: answers sampling with its own name and notes every request it was sent."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.asked: list[str] = []

    async def sample(self, context: ClientRequestContext, params: types.CreateMessageRequestParams) -> Any:
        self.asked.append("sampling")
        content = types.TextContent(type="text", text=f"I am {self.name}")
        return types.CreateMessageResult(role="assistant", content=content, model="m")


@contextlib.contextmanager
def upstream(transport: str) -> Iterator[dict[str, Any]]:
    if transport == "stdio":
        yield script_server("ask_server.py")
    else:
        with serve_app(http_app()) as url:
            yield {"url": f"{url}/mcp", "transport": "http"}


async def two_sessions_of_one_key(config: dict[str, Any]) -> tuple[dict[str, str], Downstream, Downstream]:
    """Session A calls a tool that asks for sampling once session B's call has started; both use key `sk-a`."""
    a, b = Downstream("a"), Downstream("b")
    results: dict[str, str] = {}
    with running(keyed_hub_app({"ask": config}, KEYS)) as url:
        async with (
            mcp_client(f"{url}/mcp", key="sk-a", sampling_callback=a.sample) as client_a,
            mcp_client(f"{url}/mcp", key="sk-a", sampling_callback=b.sample) as client_b,
        ):

            async def call(who: str, client: Any, name: str) -> None:
                results[who] = text_of(await client.call_tool(name, {}))

            async with anyio.create_task_group() as tg:
                tg.start_soon(call, "a", client_a, "ask__ask_after_go")
                tg.start_soon(call, "b", client_b, "ask__go")
    return results, a, b


async def test_over_streamable_http_a_request_reaches_the_session_whose_call_it_relates_to() -> None:
    with upstream("http") as config:
        results, a, b = await two_sessions_of_one_key(config)
    assert results == {"a": "I am a", "b": "went"}
    assert (a.asked, b.asked) == (["sampling"], [])


async def test_over_stdio_a_request_with_two_sessions_in_flight_is_refused_never_sent_to_the_other() -> None:
    with upstream("stdio") as config:
        results, a, b = await two_sessions_of_one_key(config)
    assert results["b"] == "went"
    assert results["a"].startswith("refused:") and "cannot tell" in results["a"]
    assert a.asked == b.asked == []


async def test_a_lone_call_over_stdio_is_asked_for_sampling_and_roots() -> None:
    a = Downstream("a")
    roots = types.ListRootsResult(roots=[types.Root.model_validate({"uri": "file:///work/a"})])

    async def list_roots(context: ClientRequestContext) -> types.ListRootsResult:
        return roots

    with upstream("stdio") as config, running(keyed_hub_app({"ask": config}, KEYS)) as url:
        async with mcp_client(f"{url}/mcp", key="sk-a", sampling_callback=a.sample, list_roots_callback=list_roots
                              ) as client:  # fmt: skip
            asked = await client.call_tool("ask__ask", {})
            listed = await client.call_tool("ask__roots", {})
    assert text_of(asked) == "I am a"
    assert text_of(listed) == "file:///work/a"
