"""An upstream's logs, elicitation and sampling reach a downstream only when the hub knows whose call caused them."""

from __future__ import annotations

import contextvars
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp.client.session import ClientRequestContext

from hub.accounts.auth import Principal
from hub.mcp.routing import Router
from tests.mcp.conftest import MASTER_KEY, keyed_hub_app, mcp_client, running, script_server, text_of

pytestmark = pytest.mark.anyio
KEYS = {"sk-a": Principal(key_id="a"), "sk-b": Principal(key_id="b")}


class Client:
    """What one downstream client was sent: log data and elicitation questions (each answered with its name)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: list[tuple[str, Any]] = []

    async def log(self, params: types.LoggingMessageNotificationParams) -> None:
        self.seen.append(("log", params.data))

    async def elicit(self, context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        self.seen.append(("elicit", params.message))
        return types.ElicitResult(action="accept", content={"answer": self.name})

    def options(self) -> dict[str, Any]:
        return {"logging_callback": self.log, "elicitation_callback": self.elicit}


def shared_hub() -> Any:
    return keyed_hub_app({"shared": script_server("shared_server.py")}, KEYS)


@pytest.mark.parametrize("tool", ["shared__ask_when_parked", "shared__log_when_parked"])
async def test_nothing_is_routed_while_calls_of_two_keys_overlap(tool: str) -> None:
    a, b = Client("a"), Client("b")
    results: dict[str, str] = {}
    with running(shared_hub()) as url:
        async with (
            mcp_client(f"{url}/mcp", key="sk-a", **a.options()) as client_a,
            mcp_client(f"{url}/mcp", key="sk-b", **b.options()) as client_b,
        ):

            async def call(who: str, client: Any, name: str) -> None:
                results[who] = text_of(await client.call_tool(name, {}))

            async with anyio.create_task_group() as tg:
                tg.start_soon(call, "a", client_a, tool)
                tg.start_soon(call, "b", client_b, "shared__park")
    assert a.seen == b.seen == []
    assert results["b"] == "parked"
    if "ask" in tool:
        assert results["a"].startswith("refused:") and "cannot tell" in results["a"]


async def test_nothing_is_asked_while_a_call_without_a_downstream_is_in_flight() -> None:
    a = Client("a")
    with running(shared_hub()) as url:
        async with (
            mcp_client(f"{url}/mcp", key="sk-a", **a.options()) as client,
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=30) as rest,
        ):
            results: dict[str, str] = {}

            async def ask() -> None:
                results["a"] = text_of(await client.call_tool("shared__ask_when_parked", {}))

            async def park() -> None:
                response = await rest.post(f"{url}/mcp/tools/call", json={"name": "shared__park"})
                results["rest"] = response.json()["content"][0]["text"]

            async with anyio.create_task_group() as tg:
                tg.start_soon(ask)
                tg.start_soon(park)
    assert a.seen == []
    assert results["rest"] == "parked" and results["a"].startswith("refused:")


async def test_a_lone_call_gets_its_logs_and_questions() -> None:
    a = Client("a")
    with running(shared_hub()) as url:
        async with mcp_client(f"{url}/mcp", key="sk-a", **a.options()) as client:
            logged = await client.call_tool("shared__log", {})
            asked = await client.call_tool("shared__ask", {})
    assert text_of(logged) == "logged"
    assert text_of(asked) == "accept: {'answer': 'a'}"
    assert a.seen == [("log", {"secret": "for the caller only"}), ("elicit", "The caller's question?")]


class Owned:
    def __init__(self, session: str) -> None:
        self.session = session


def test_the_router_picks_a_caller_only_when_all_calls_in_flight_share_a_session() -> None:
    router = Router("s")
    a1, a2, b = Owned("a"), Owned("a"), Owned("b")

    def unrelated() -> Any:  # a message from the upstream's shared channel: no call's context
        return contextvars.Context().run(router.caller)

    assert unrelated() is None
    with router.calling(a1):  # pyright: ignore[reportArgumentType]
        assert unrelated() is a1
        with router.calling(a2):  # pyright: ignore[reportArgumentType]
            assert unrelated() is a2
            assert router.caller() is a2  # in a call's context: that call
            with router.calling(b):  # pyright: ignore[reportArgumentType]
                assert unrelated() is None
        with router.calling(None):
            assert unrelated() is None
        assert unrelated() is a1


def test_a_request_naming_a_calls_progress_token_goes_to_that_call() -> None:
    router = Router("s")
    a, b = Owned("a"), Owned("b")
    with router.calling(a) as call_a:  # pyright: ignore[reportArgumentType]
        call_a.progress_token = 7
        with router.calling(b):  # pyright: ignore[reportArgumentType]
            assert contextvars.Context().run(router.caller, {"progressToken": 7}) is a
            assert contextvars.Context().run(router.caller, {"progressToken": 8}) is None
