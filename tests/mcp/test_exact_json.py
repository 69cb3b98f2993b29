"""`hub.mcp.lines.exact_json`: every integer exact, short and long messages alike."""

from __future__ import annotations

import orjson
import pytest

from hub.mcp.lines import EXACT_ABOVE, exact_json


@pytest.mark.parametrize("padding", [0, EXACT_ABOVE])
def test_integers_beyond_64_bits_stay_exact_in_short_and_long_messages(padding: int) -> None:
    line = b'{"jsonrpc":"2.0","id":1,"result":{"n":123456789012345678901234,"text":"' + b"x" * padding + b'"}}'
    assert exact_json(line)["result"]["n"] == 123456789012345678901234


@pytest.mark.parametrize("padding", [0, EXACT_ABOVE])
def test_a_message_reads_as_orjson_reads_it(padding: int) -> None:
    message = {"jsonrpc": "2.0", "id": "a", "result": {"content": [{"type": "text", "text": "é" * padding}], "f": 1.5}}
    line = orjson.dumps(message)
    assert exact_json(line) == orjson.loads(line) == message


@pytest.mark.parametrize("line", [b"{", b"", b"\xff" * (EXACT_ABOVE + 1)])
def test_what_is_not_json_raises_value_error(line: bytes) -> None:
    with pytest.raises(ValueError):
        exact_json(line)
