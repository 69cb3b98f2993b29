"""`TurnWritesHttpTools`: what uvicorn writes in one event-loop turn leaves in one write, and every answer (whole,
streamed, on a connection the client closes) still arrives complete."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest
import uvicorn

from hub.gateway import transport
from hub.gateway.transport import TurnWrites, TurnWritesHttpTools


class Recorder:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0


@pytest.mark.anyio
async def test_the_writes_of_one_turn_are_one_write_and_close_sends_what_is_held() -> None:
    recorder = Recorder()
    turn = TurnWrites(recorder, asyncio.get_running_loop())  # pyright: ignore[reportArgumentType]
    turn.write(b"head ")
    turn.write(b"body")
    assert recorder.writes == []
    await anyio.lowlevel.checkpoint()
    assert recorder.writes == [b"head body"]
    turn.write(b"last")
    turn.close()
    assert (recorder.writes, recorder.closed, turn.get_write_buffer_size()) == ([b"head body", b"last"], True, 0)
    await anyio.lowlevel.checkpoint()
    assert recorder.writes == [b"head body", b"last"]  # the turn's flush found nothing left


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        for part in (b"one ", b"two ", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
            await anyio.sleep(0.01)
        await send({"type": "http.response.body", "body": b""})
        return
    body = scope["path"].encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = uvicorn.Server(uvicorn.Config(app, http=TurnWritesHttpTools, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:  # noqa: ASYNC110 - uvicorn sets a flag, no event
            await anyio.sleep(0.01)
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


async def exchange(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(-1), 10)  # until the server closes: every request asks it to
    writer.close()
    return data


@pytest.mark.anyio
async def test_answers_arrive_whole_kept_alive_pipelined_streamed_and_closed() -> None:
    async with serving(app) as port:
        get = b"GET %b HTTP/1.1\r\nHost: hub\r\n%b\r\n"
        pipelined = await exchange(port, get % (b"/a", b"") + get % (b"/bb", b"Connection: close\r\n"))
        streamed = await exchange(port, get % (b"/stream", b"Connection: close\r\n"))
    first, second = pipelined.split(b"HTTP/1.1 ")[1:]
    assert first.startswith(b"200 OK") and first.endswith(b"\r\n\r\n/a")
    assert second.startswith(b"200 OK") and second.endswith(b"\r\n\r\n/bb")
    assert streamed.startswith(b"HTTP/1.1 200 OK") and b"transfer-encoding: chunked" in streamed
    assert streamed.endswith(b"\r\n\r\n4\r\none \r\n4\r\ntwo \r\n5\r\nthree\r\n0\r\n\r\n")


async def slow_answer(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await anyio.sleep(0.5)  # longer than the head timeout: an answer in progress is not cut
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})


@pytest.mark.anyio
@pytest.mark.parametrize("sent", [b"", b"GET / HTTP/1.1\r\nHost: hub\r\nX-Slow: "])
async def test_a_head_that_does_not_come_whole_in_time_is_a_408_and_the_connection_closes(
    monkeypatch: pytest.MonkeyPatch, sent: bytes
) -> None:
    monkeypatch.setattr(transport, "HEAD_TIMEOUT", 0.2)
    async with serving(slow_answer) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(sent)
        with anyio.fail_after(5):
            answer = await reader.read(-1)  # until the server closes
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")


@pytest.mark.anyio
async def test_a_whole_head_and_a_slow_answer_on_a_kept_connection_are_not_timed_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(transport, "HEAD_TIMEOUT", 0.2)
    async with serving(slow_answer) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        answers = []
        for _ in range(2):
            writer.write(b"GET / HTTP/1.1\r\nHost: hub\r\n\r\n")
            with anyio.fail_after(5):
                answers.append(await reader.readuntil(b"ok"))
        writer.close()
    assert all(answer.startswith(b"HTTP/1.1 200 OK") for answer in answers)
