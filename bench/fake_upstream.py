"""A minimal, fast OpenAI-compatible upstream for benchmarks: a raw asyncio protocol with keep-alive.

It answers every POST with a fixed chat completion, or, when the body asks for `"stream": true`, a 20-chunk stream
with a usage chunk and `[DONE]`. It is deliberately dumb so that it costs far less CPU than what it measures.
For the tool-loop benchmark, a request offering tools gets a call of the `bench__echo` tool until it carries
`ROUNDS - 1` tool results, then the fixed answer.
Run: python bench/fake_upstream.py --port 4100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket

COMPLETION = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1727346178,
        "model": "bench",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello! How can I help you today?"},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21},
    }
).encode()


def _stream_body(chunks: int = 20) -> bytes:
    def chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
        data = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1727346178,
            "model": "bench",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        return b"data: " + json.dumps(data).encode() + b"\n\n"

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": f"tok{i} "}) for i in range(chunks - 2)]
    events.append(chunk({}, "stop"))
    usage = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1727346178,
        "model": "bench",
        "choices": [],
        "usage": {"prompt_tokens": 12, "completion_tokens": 18, "total_tokens": 30},
    }
    events.append(b"data: " + json.dumps(usage).encode() + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return b"".join(events)


STREAM = _stream_body()
ROUNDS = 5
TOOL_CALL = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1727346178,
        "model": "bench",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_bench",
                            "type": "function",
                            "function": {"name": "bench__echo", "arguments": '{"text": "hi"}'},
                        }
                    ],
                },
                "logprobs": None,
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21},
    }
).encode()
JSON_RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
    len(COMPLETION),
    COMPLETION,
)
SSE_RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: %d\r\n\r\n%s" % (
    len(STREAM),
    STREAM,
)


def _tool_stream() -> bytes:
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1727346178, "model": "bench"}
    call = {
        "index": 0,
        "id": "call_bench",
        "type": "function",
        "function": {"name": "bench__echo", "arguments": '{"text": "hi"}'},
    }
    deltas = [
        ({"role": "assistant", "content": "Checking. "}, None),
        ({"tool_calls": [call]}, None),
        ({}, "tool_calls"),
    ]
    events = [{**base, "choices": [{"index": 0, "delta": d, "finish_reason": f}]} for d, f in deltas]
    events.append({**base, "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21}})
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"


TOOL_STREAM = _tool_stream()
TOOL_SSE_RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: %d\r\n\r\n%s" % (
    len(TOOL_STREAM),
    TOOL_STREAM,
)
TOOL_RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
    len(TOOL_CALL),
    TOOL_CALL,
)
MODELS = b'{"object":"list","data":[{"id":"bench","object":"model","created":0,"owned_by":"bench"}]}'
MODELS_RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
    len(MODELS),
    MODELS,
)


class Upstream(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].lower()
            length = 0
            marker = head.find(b"content-length:")
            if marker >= 0:
                length = int(head[marker + 15 : head.find(b"\r\n", marker) if head.find(b"\r\n", marker) > 0 else None])
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            body = self.buffer[head_end + 4 : end]
            self.buffer = self.buffer[end:]
            if head.startswith(b"get"):
                self.transport.write(MODELS_RESPONSE)
            elif b'"tools"' in body and body.count(b'"role":"tool"') < ROUNDS - 1:
                stream = b'"stream":true' in body.replace(b" ", b"")
                self.transport.write(TOOL_SSE_RESPONSE if stream else TOOL_RESPONSE)
            elif b'"stream":true' in body.replace(b" ", b""):
                self.transport.write(SSE_RESPONSE)
            else:
                self.transport.write(JSON_RESPONSE)


async def serve(port: int, fd: int | None = None) -> None:
    loop = asyncio.get_running_loop()
    if fd is None:
        server = await loop.create_server(Upstream, "127.0.0.1", port, backlog=1024)
    else:  # a socket the bench bound and handed over: no other process can take the port in between
        server = await loop.create_server(Upstream, sock=socket.socket(fileno=fd), backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=4100)
    parser.add_argument("--fd", type=int, default=None, help="serve on this inherited, bound socket instead")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(args.port, args.fd))


if __name__ == "__main__":
    main()
