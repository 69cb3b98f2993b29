"""Shared fixtures: the anyio backend, and a clean environment for config loading."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
