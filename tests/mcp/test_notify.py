"""Change notifications: a client that stops reading delays no one else."""

from __future__ import annotations

import contextlib
from typing import Any

import anyio
import pytest

from hub.mcp import notify
from hub.mcp.notify import Downstreams

pytestmark = pytest.mark.anyio


class FakeConnection:
    """A downstream connection that records notifications, or never accepts one (`stuck`)."""

    def __init__(self, stuck: bool = False) -> None:
        self.stuck = stuck
        self.sent: list[str] = []
        self.exit_stack = contextlib.ExitStack()

    async def _send(self, what: str) -> None:
        if self.stuck:
            await anyio.sleep_forever()
        self.sent.append(what)

    async def send_tool_list_changed(self) -> None:
        await self._send("tools")

    async def send_resource_list_changed(self) -> None:
        await self._send("resources")

    async def send_prompt_list_changed(self) -> None:
        await self._send("prompts")

    async def send_resource_updated(self, uri: str) -> None:
        await self._send(uri)


async def test_a_client_that_stops_reading_does_not_stall_notifications_for_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(notify, "SEND_TIMEOUT", 0.05)
    downstreams = Downstreams()
    stuck, reading = FakeConnection(stuck=True), FakeConnection()
    connections: list[Any] = [stuck, reading]
    for connection in connections:
        downstreams._register(connection)  # pyright: ignore[reportPrivateUsage]
    downstreams._subscribers["res://x"] = {id(c): c for c in connections}  # pyright: ignore[reportPrivateUsage]
    with anyio.fail_after(10):  # guards against a hang only
        await downstreams.changed({"tools", "prompts"})
        await downstreams.resource_updated("res://x")
    assert reading.sent == ["tools", "prompts", "res://x"]
    assert stuck.sent == []
