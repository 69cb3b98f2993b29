"""Resources two upstreams share, cursors the hub never issued, and what an upstream restart announces."""

from __future__ import annotations

import anyio
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from tests.mcp.conftest import Notifications, hub_app, mcp_client, running, script_server, text_of, tool_server

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")]


def two_notes() -> dict[str, object]:
    return {"one": script_server("ask_server.py", "one"), "two": script_server("ask_server.py", "two")}


async def test_colliding_resource_uris_are_namespaced_reversibly_and_templates_listed_once() -> None:
    with running(hub_app(two_notes())) as url:
        async with mcp_client(f"{url}/mcp") as client:
            listed = sorted(r.uri for r in (await client.list_resources()).resources)
            templates = [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
            read_one = await client.read_resource("toolhub://one/note://shared")
            read_two = await client.read_resource("toolhub://two/note://7")
    assert listed == ["toolhub://one/note://shared", "toolhub://two/note://shared"]
    assert sorted(templates) == ["toolhub://one/note://{id}", "toolhub://two/note://{id}"]
    assert [(c.uri, getattr(c, "text", None)) for c in read_one.contents] == [
        ("toolhub://one/note://shared", "shared of one")
    ]
    assert [getattr(c, "text", None) for c in read_two.contents] == ["7 of two"]


async def test_a_subscription_to_a_namespaced_uri_reaches_its_upstream_and_its_updates_come_back() -> None:
    seen = Notifications()
    with running(hub_app(two_notes())) as url:
        async with mcp_client(f"{url}/mcp", message_handler=seen) as client:
            await client.subscribe_resource("toolhub://two/note://shared")
            touched_one = text_of(await client.call_tool("one__touch", {}))
            touched_two = text_of(await client.call_tool("two__touch", {}))
            if not any(isinstance(m, types.ResourceUpdatedNotification) for m in seen.seen):  # may precede the answer
                await seen.next(types.ResourceUpdatedNotification)
    assert (touched_one, touched_two) == ("touched []", "touched ['note://shared']")
    updates = [m.params.uri for m in seen.seen if isinstance(m, types.ResourceUpdatedNotification)]
    assert updates == ["toolhub://two/note://shared"]


async def test_a_cursor_the_hub_never_issued_is_invalid_params() -> None:
    with running(hub_app({"tool": tool_server()})) as url:
        async with mcp_client(f"{url}/mcp") as client:
            codes: list[int] = []
            for listing in (client.list_tools, client.list_resources, client.list_prompts,
                            client.list_resource_templates):  # fmt: skip
                with pytest.raises(MCPError) as raised:
                    await listing(cursor="bogus")
                codes.append(raised.value.error.code)
            assert len((await client.list_tools()).tools) > 0
    assert codes == [types.INVALID_PARAMS] * 4


async def test_a_restart_of_a_tools_only_upstream_announces_only_the_tool_list() -> None:
    seen = Notifications()
    with running(hub_app({"tool": tool_server()})) as url:
        async with mcp_client(f"{url}/mcp", message_handler=seen) as client:
            with anyio.fail_after(30):
                await client.call_tool("tool__crash", {})
                while sum(isinstance(m, types.ToolListChangedNotification) for m in seen.seen) < 2:  # down, then up
                    await seen.next()
            assert len((await client.list_tools()).tools) > 0
    kinds = {type(m).__name__ for m in seen.seen}
    assert kinds == {"ToolListChangedNotification"}
