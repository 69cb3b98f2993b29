"""`OneLineStartupErrors` (hub/scale/startup.py): which lifespan startup failures uvicorn logs as one line."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.types import Message

from hub.config import ConfigError
from hub.scale.startup import OneLineStartupErrors
from hub.storage import StoreError

pytestmark = pytest.mark.anyio


async def startup_messages(failure: BaseException) -> list[Message]:
    """What the wrapped app sends uvicorn for a lifespan startup that raises `failure`."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            raise failure
        except StoreError as exc:
            raise ExceptionGroup("task group", [exc]) from None  # as anyio would wrap it
        yield

    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        sent.append(message)

    with pytest.raises(BaseException):  # noqa: B017  Starlette re-raises after reporting
        await OneLineStartupErrors(Starlette(lifespan=lifespan))({"type": "lifespan"}, receive, send)
    return sent


async def test_a_store_error_is_its_message_even_inside_a_task_group() -> None:
    sent = await startup_messages(StoreError("cannot connect to PostgreSQL: [Errno 111] Connection refused"))
    assert sent == [
        {
            "type": "lifespan.startup.failed",
            "message": "database: cannot connect to PostgreSQL: [Errno 111] Connection refused",
        }
    ]


async def test_a_config_error_names_its_path() -> None:
    sent = await startup_messages(ConfigError("general_settings.x", "bad"))
    assert sent == [{"type": "lifespan.startup.failed", "message": "config error at general_settings.x: bad"}]


async def test_any_other_failure_keeps_its_traceback() -> None:
    sent = await startup_messages(RuntimeError("a bug"))
    assert [m["type"] for m in sent] == ["lifespan.startup.failed"]
    assert sent[0]["message"].startswith("Traceback (most recent call last):")
    assert sent[0]["message"].rstrip().endswith("RuntimeError: a bug")
