"""The workers' directory of `serve --workers N` without Redis (hub/mcp/forward/local.py) while the workers run: a
worker writes its file again when it (or the whole directory) was removed, and stops using a directory that came
back not private."""

from __future__ import annotations

import logging
import shutil
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from hub.mcp.forward import WorkerRegistry
from hub.mcp.forward.registry import new_replica_id

pytestmark = pytest.mark.anyio


def _pair(directory: Path) -> tuple[WorkerRegistry, WorkerRegistry]:
    """A worker checking its file every 10 ms, and another worker looking it up."""
    here = WorkerRegistry(directory, new_replica_id(), "http://127.0.0.1:1234", check_every=0.01)
    return here, WorkerRegistry(directory, new_replica_id(), "http://127.0.0.1:5678")


async def _found_within(here: WorkerRegistry, other: WorkerRegistry) -> None:
    for _ in range(1000):  # 10 s at most
        if await other.url_of(here.replica_id) == here.url:
            return
        await anyio.sleep(0.01)
    raise AssertionError("the worker's file was not written again within 10 s")


def _remove_file(directory: Path, replica_id: str) -> None:
    (directory / replica_id).unlink()


def _remove_directory(directory: Path, replica_id: str) -> None:
    shutil.rmtree(directory)


@pytest.mark.parametrize("remove", [_remove_file, _remove_directory])
async def test_a_running_worker_writes_its_removed_file_again(
    tmp_path: Path, remove: Callable[[Path, str], None]
) -> None:
    """Before: written once at start, so the other workers answered 404 for its sessions from then on."""
    directory = tmp_path / "workers"
    here, other = _pair(directory)
    async with anyio.create_task_group() as tg:
        tg.start_soon(here.run)
        await _found_within(here, other)
        for _ in range(2):  # and again after a second removal
            remove(directory, here.replica_id)
            assert await other.url_of(here.replica_id) is None
            await _found_within(here, other)
        tg.cancel_scope.cancel()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


async def test_a_directory_that_comes_back_writable_by_others_is_no_longer_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Made again by someone else (mode 0777 here): a forward carries the client's `Authorization`, so no URL is
    read from there, and the worker writes nothing there either. Said once, not at every check."""
    caplog.set_level(logging.WARNING, "toolhub.mcp")
    directory = tmp_path / "workers"
    here, other = _pair(directory)
    assert here.keep() and await other.url_of(here.replica_id) == here.url
    shutil.rmtree(directory)
    directory.mkdir()
    directory.chmod(0o777)
    assert [here.keep(), other.keep(), here.keep()] == [False, False, False]
    assert await other.url_of(here.replica_id) is None and list(directory.iterdir()) == []
    directory.chmod(0o700)
    assert [here.keep(), other.keep()] == [True, True]  # each on its next check
    assert await other.url_of(here.replica_id) == here.url
    mine = [r.getMessage() for r in caplog.records if r.thread == threading.get_ident()]
    assert sum("is not private" in m for m in mine) == 2, mine  # once per worker
    assert any(m.startswith("this worker's MCP URL is advertised in") for m in mine), mine


async def test_a_directory_that_cannot_be_made_is_retried_and_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "toolhub.mcp")
    here, other = _pair(tmp_path / "gone" / "workers")  # its parent is missing: mkdir fails
    assert [here.keep(), here.keep()] == [False, False]
    (tmp_path / "gone").mkdir()
    assert here.keep() and await other.url_of(here.replica_id) == here.url
    mine = [r.getMessage() for r in caplog.records if r.thread == threading.get_ident()]
    assert sum("could not advertise this worker's MCP URL" in m for m in mine) == 1, mine
