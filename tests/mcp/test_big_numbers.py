"""Integers beyond 64 bits in a tool's arguments and result reach the upstream and the client exactly, on every path
of a call: the short way (`hub.mcp.lean`), the SDK's, a straight stdio call (`hub.mcp.direct_call`) and its answer.
orjson would read them as floats (the SDK's pydantic keeps them) and refuses to write them."""

from __future__ import annotations

import json

import httpx2

from hub.limits import json_too_deep
from hub.mcp.direct_call import _encoded  # pyright: ignore[reportPrivateUsage]
from hub.mcp.errors import InvalidArguments, check_arguments
from tests.mcp.conftest import MASTER_KEY, hub_app, running, script_server
from tests.mcp.test_lean import headers, kind, open_session

AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}
ARGUMENTS = {"wei": 1234567890123456789012, "low": -9223372036854775809, "top": 18446744073709551615, "n": 7}


def body(request_id: int) -> bytes:
    params = {"name": "raw__echo", "arguments": ARGUMENTS}
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}).encode()


def result_of(response: httpx2.Response) -> dict[str, object]:
    text = response.text if kind(response) == "application/json" else response.text.split("data: ", 1)[1]
    return json.loads(text)["result"]  # Python's json keeps the integers exact


def test_big_integers_reach_the_upstream_and_come_back_exactly_in_plain_and_asking_sessions() -> None:
    app = hub_app({"raw": script_server("raw_server.py", "mirror")})
    with running(app) as base:
        url = f"{base}/mcp"
        plain, asking = open_session(url, {}), open_session(url, {"sampling": {}})
        answers = [
            httpx2.post(url, headers=headers(s), content=body(n), timeout=30) for n, s in enumerate((plain, asking))
        ]
    assert [kind(answer) for answer in answers] == ["application/json", "text/event-stream"]
    for answer in answers:
        result = result_of(answer)
        assert not result.get("isError"), result
        assert json.loads(result["content"][0]["text"]) == ARGUMENTS  # what the upstream got  # type: ignore[index]
        assert result["structuredContent"] == ARGUMENTS  # what it answered


def test_arguments_orjson_cannot_write_are_measured_and_sent_as_pydantic_writes_them() -> None:
    check_arguments(ARGUMENTS, 1000, "e")  # not "nested too deep"
    assert not json_too_deep({"a": [2**70]}, raw=b"[" * 200)
    deep: object = [2**70]
    for _ in range(200):
        deep = [deep]
    assert json_too_deep(deep)
    try:
        check_arguments({"many": [2**70] * 100}, 1000, "e")
    except InvalidArguments as exc:
        assert exc.message == "The arguments of 'e' take 2310 bytes as JSON, over the limit of 1000."
    else:
        raise AssertionError("over the limit, not refused")
    line = _encoded({"jsonrpc": "2.0", "id": 1, "params": {"arguments": ARGUMENTS}})
    assert line.endswith(b"\n") and json.loads(line)["params"]["arguments"] == ARGUMENTS


def test_big_integers_reach_the_upstream_and_come_back_exactly_over_rest() -> None:
    app = hub_app({"raw": script_server("raw_server.py", "mirror")})
    call = json.dumps({"name": "raw__echo", "arguments": ARGUMENTS}).encode()
    with running(app) as base:
        answer = httpx2.post(f"{base}/mcp/tools/call", headers=AUTH, content=call, timeout=30)
        refused = httpx2.post(f"{base}/mcp/tools/call", headers=AUTH, content=b'{"name": 1e', timeout=30)
    assert answer.status_code == 200, answer.text
    result = json.loads(answer.text)
    assert json.loads(result["content"][0]["text"]) == ARGUMENTS  # what the upstream got
    assert result["structuredContent"] == ARGUMENTS  # what it answered, written exactly
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invalid_json"
