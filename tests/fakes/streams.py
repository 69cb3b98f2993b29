"""Waiting for a fake upstream to count a stream the gateway abandoned."""

from __future__ import annotations

import time
from typing import Protocol


class CountsDisconnects(Protocol):
    disconnects: int


def disconnects_after(fake: CountsDisconnects, before: int, timeout: float = 10) -> int:
    """The fake's count of abandoned streams once it is past `before` (waited for, at most `timeout` s).

    The fake counts one when the gateway cancels its stream, after the client has gone. Its `stream_closed` event
    says less: any stream's end sets it, and the end of the previous test's stream (a mid-stream error the client
    had already read) can come late enough to set it again after a test cleared it."""
    deadline = time.monotonic() + timeout
    while fake.disconnects == before and time.monotonic() < deadline:
        time.sleep(0.01)
    return fake.disconnects
