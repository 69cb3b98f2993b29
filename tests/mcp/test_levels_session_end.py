"""When a session that set a log level ends, shared upstreams go back to the most verbose level of those left."""

from __future__ import annotations

import anyio
import pytest

from hub.mcp.levels import LogLevels
from tests.mcp.conftest import hub_app, mcp_client, running, script_server, text_of

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")]


async def test_a_closed_debug_session_no_longer_keeps_the_upstream_at_debug() -> None:
    with running(hub_app({"ask": script_server("ask_server.py")})) as url:
        async with mcp_client(f"{url}/mcp") as staying:
            await staying.set_logging_level("error")
            async with mcp_client(f"{url}/mcp") as leaving:
                await leaving.set_logging_level("debug")
                while_open = text_of(await staying.call_tool("ask__level", {}))
            # The level is sent after the session's end, in the hub's own task: poll for it (bounded).
            level = while_open
            with anyio.move_on_after(20):
                while level != "error":
                    await anyio.sleep(0.05)
                    level = text_of(await staying.call_tool("ask__level", {}))
    assert (while_open, level) == ("debug", "error")


class Session:
    pass


def test_a_forgotten_session_no_longer_counts_and_only_a_first_level_is_new() -> None:
    levels = LogLevels()
    a, b = Session(), Session()
    assert levels.set(a, "error") and levels.set(b, "debug") and not levels.set(b, "info")
    assert levels.most_verbose() == "info"
    levels.forget(b)
    assert levels.most_verbose() == "error" and levels.get(b) is None
