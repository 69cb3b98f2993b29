"""`toolhub stdio` answers every line it cannot take as JSON-RPC 2.0 says (section 5.1), where the SDK's session would
only log it and the client would wait for ever: -32700 with a null id for what is no JSON, -32600 (with the request's
id when it has one) for JSON that is no request, -32602 for a request nested deeper than the SDK's parser reads.
Lines that look like notifications or responses are never answered; the session goes on after each of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hub.mcp.lines import Oversized
from hub.mcp.stdio_wire import refusal
from tests.mcp.conftest import tool_server
from tests.mcp.stdio_peer import StdioPeer, stdio_peer, write_config


def deep_call(request_id: int, depth: int) -> bytes:
    arguments = b'{"a":' + b"[" * depth + b"]" * depth + b"}"
    start = b'{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"tool__echo","arguments":' % request_id
    return start + arguments + b"}}"


LINES = [
    (b'{"jsonrpc":"1.0","id":10,"method":"ping"}', 10, -32600),
    (b'{"id":11,"method":"ping"}', 11, -32600),
    (b'{"jsonrpc":"2.0","id":12,"method":"ping"', None, -32700),
    (b'[{"jsonrpc":"2.0","id":13,"method":"ping"}]', None, -32600),
    (b"[]", None, -32600),
    (b'{"jsonrpc":"2.0","id":[14],"method":"ping"}', None, -32600),
    (deep_call(15, 150), 15, -32602),  # the SDK reads it; the hub refuses the arguments
    (deep_call(16, 250), 16, -32602),  # deeper than the SDK's parser goes
    (deep_call(17, 1100), None, -32700),  # deeper than any parser here goes
    (b"\xff\xfe not even text", None, -32700),
]


def next_answer(peer: StdioPeer) -> dict[str, Any]:
    """The next response, skipping notifications (a list_changed when the upstream comes up)."""
    for _ in range(20):
        message = peer.receive(30)
        if "method" not in message:
            return message
    raise AssertionError("20 notifications and no answer")


def test_lines_that_are_no_request_are_answered_and_the_session_goes_on(tmp_path: Path) -> None:
    with stdio_peer(write_config(tmp_path, {"tool": tool_server()})) as peer:
        peer.handshake()
        assert peer.proc.stdin is not None
        for line, request_id, code in LINES:
            peer.proc.stdin.write(line + b"\n")
            peer.proc.stdin.flush()
            answer = next_answer(peer)
            assert (answer["id"], answer["error"]["code"]) == (request_id, code), (line[:60], answer)
        peer.proc.stdin.write(
            b'{"jsonrpc":"2.0","method":"notifications/x","params":5}\n{"jsonrpc":"2.0","id":3,"result":5}\n'
        )
        ping = peer.request("ping")  # the two lines before it get no answer: the next one is the ping's
        assert next_answer(peer) == {"jsonrpc": "2.0", "id": ping, "result": {}}
        peer.close_stdin()
        assert peer.proc.wait(30) == 0
        assert "no JSON-RPC message" in peer.stderr()


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b'{"jsonrpc": "2.0", "id": 42, "method": "tools/call", "params": {"arguments": {"t": "xxxx', 42),
        (b'{"id":"a-1","jsonrpc":"2.0","method":"tools/call"', "a-1"),
        (b'{"jsonrpc":"2.0","method":"tools/call","id":5,"params":{', None),  # the id not first: not looked for
        (b'{"jsonrpc":"2.0","id":"a-\\"1","method":"tools/call"', 'a-"1'),
        (b'{"jsonrpc":"2.0","id":"\\x","method":"tools/call"', None),  # no JSON string: raised in `_read`
        (b'{"jsonrpc":"2.0","id":"\\ud800","method":"tools/call"', None),  # a lone surrogate: raised in `_write`
    ],
)
def test_an_oversized_request_is_answered_with_its_id_when_it_starts_with_it(head: bytes, expected: object) -> None:
    error = refusal(Oversized(head, b"}}}", 300 * 1024 * 1024))
    assert error is not None and error.id == expected and error.error.code == -32600
    assert "314572800 bytes is over" in error.error.message
    assert error.model_dump_json(by_alias=True, exclude_unset=True)  # as `_write` sends it


def test_an_oversized_response_is_not_answered() -> None:
    assert refusal(Oversized(b'{"jsonrpc":"2.0","id":3,"result":{"content":[', b"]}}", 300 * 1024 * 1024)) is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"42", "Invalid Request: not a JSON-RPC message (one JSON object)."),
        (b'"ping"', "Invalid Request: not a JSON-RPC message (one JSON object)."),
        (b'[{"jsonrpc":"2.0","id":1,"method":"ping"}]', "Invalid Request: batches are not supported."),
        (deep_call(17, 1100), "Parse error: nesting too deep (over 1024 levels) to read."),
        (b'{"jsonrpc":"2.0","id":12,"method":"ping"', "Parse error: the line is not JSON."),
    ],
)
def test_each_refusal_says_what_is_wrong_with_the_line(line: bytes, message: str) -> None:
    error = refusal(line)
    assert error is not None and error.error.message == message
