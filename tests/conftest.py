"""Shared fixtures: the anyio backend, and a scratch working directory for the whole run."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session", autouse=True)
def scratch_cwd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Run in a scratch directory, so that servers without a `database_url` make their `toolhub.db` there."""
    before = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    try:
        yield
    finally:
        os.chdir(before)
