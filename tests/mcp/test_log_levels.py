"""`logging/setLevel` is per session: the hub filters each session's logs; the upstream runs at the most verbose."""

from __future__ import annotations

import gc
from typing import Any

import mcp_types as types
import pytest

from hub.mcp.levels import LogLevels
from tests.mcp.conftest import hub_app, mcp_client, running, script_server, text_of

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")]


class Logs:
    def __init__(self) -> None:
        self.lines: list[Any] = []

    async def __call__(self, params: types.LoggingMessageNotificationParams) -> None:
        self.lines.append(params.data)


async def test_each_session_gets_logs_at_its_own_level_and_the_upstream_at_the_most_verbose() -> None:
    a, b = Logs(), Logs()
    with running(hub_app({"ask": script_server("ask_server.py")})) as url:
        async with (
            mcp_client(f"{url}/mcp", logging_callback=a) as client_a,
            mcp_client(f"{url}/mcp", logging_callback=b) as client_b,
        ):
            await client_a.set_logging_level("error")
            await client_b.set_logging_level("info")
            await client_a.call_tool("ask__log_all", {})
            await client_b.call_tool("ask__log_all", {})
            upstream_level = text_of(await client_a.call_tool("ask__level", {}))
            await client_b.set_logging_level("warning")
            lowered = text_of(await client_a.call_tool("ask__level", {}))
    assert a.lines == ["error line"]
    assert b.lines == ["info line", "warning line", "error line"]
    assert (upstream_level, lowered) == ("info", "warning")


class Session:
    pass


def test_the_most_verbose_level_of_live_sessions_wins_and_a_closed_session_is_forgotten() -> None:
    levels = LogLevels()
    a, b = Session(), Session()
    assert levels.most_verbose() is None and levels.allows(a, "debug")
    levels.set(a, "error")
    levels.set(b, "info")
    assert levels.most_verbose() == "info"
    assert not levels.allows(a, "warning") and levels.allows(a, "critical") and levels.allows(b, "info")
    del b
    gc.collect()
    assert levels.most_verbose() == "error"
