"""/v1/responses forwarded to a deployment's own `/responses` (hub/api/responses/passthrough.py): usage the gateway
cannot trust (a negative count, details that are no object) is a 502 `upstream_bad_response` naming the upstream's
field, with one spend row, nothing credited, and the key's budget hold released; streamed, the stream ends with the
Responses API's `error` event instead of being cut."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from hub.config import parse_config
from hub.server import build_app
from tests.api.test_responses_passthrough import entry, opted_in
from tests.hub import test_bad_upstream_answers as bad_answers
from tests.hub.test_bad_upstream_answers import MASTER_KEY, assert_bad_response, logs
from tests.support.servers import serve_app

USAGE = {"input_tokens": 12, "output_tokens": 7, "total_tokens": 19}
BAD = [
    pytest.param({"input_tokens": -3000, "output_tokens": 5}, "input_tokens", id="negative"),
    pytest.param({**USAGE, "output_tokens": 7.5}, "output_tokens", id="float"),
    pytest.param({**USAGE, "input_tokens_details": [1]}, "input_tokens_details", id="details-list"),
    pytest.param({**USAGE, "output_tokens_details": {"reasoning_tokens": -1}}, "reasoning_tokens", id="reasoning"),
    pytest.param([1], "usage", id="usage-list"),
]


class Upstream:
    """A Responses API server answering with the usage the test set last (a good one by default)."""

    def __init__(self) -> None:
        self.usage: Any = USAGE
        self.app = Starlette(routes=[Route("/v1/responses", self.create, methods=["POST"])])

    def response(self) -> dict[str, Any]:
        text = {"type": "output_text", "text": "hi", "annotations": []}
        message = {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed", "content": [text]}
        return {"id": "resp_1", "object": "response", "created_at": 0, "status": "completed", "model": "text",
                "store": False, "output": [message], "usage": self.usage}  # fmt: skip

    async def create(self, request: Request) -> Response:
        if not (await request.json()).get("stream"):
            return JSONResponse(self.response())
        return StreamingResponse(self.events(), media_type="text/event-stream")

    async def events(self) -> AsyncIterator[bytes]:
        final = self.response()
        created = {"type": "response.created", "response": {**final, "status": "in_progress", "output": []}}
        for event in (created, {"type": "response.completed", "response": final}):
            yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Upstream, str]]:
    upstream = Upstream()
    database = Path(tmp_path_factory.mktemp("bad-responses")) / "hub.db"
    with serve_app(upstream.app) as base:
        model = entry("native", "text", base)
        model["litellm_params"].update(input_cost_per_token=1e-4, output_cost_per_token=1e-4)
        raw = {
            "model_list": [model],
            "general_settings": {"master_key": MASTER_KEY, "database_url": f"sqlite:///{database}"},
        }
        with serve_app(build_app(opted_in(parse_config(raw, {}), "native"))) as url:
            yield upstream, url


@pytest.fixture
def upstream(served: tuple[Upstream, str]) -> Iterator[Upstream]:
    yield served[0]
    served[0].usage = USAGE


admin = bad_answers.admin  # the same fixtures: a master-key client of `served`, a key whose budget holds one request
key = bad_answers.key


def create(admin: httpx2.Client, key: str, stream: bool) -> httpx2.Response:
    body = {"model": "native", "input": "hi", "stream": stream}
    return admin.post("/v1/responses", json=body, headers={"authorization": f"Bearer {key}"})


def assert_released_and_not_credited(admin: httpx2.Client, upstream: Upstream, key: str) -> None:
    upstream.usage = USAGE
    assert create(admin, key, False).status_code == 200  # the hold of the bad request was released
    assert admin.get("/key/info", params={"key": key}).json()["info"]["spend"] >= 19 * 1e-4


@pytest.mark.parametrize(("usage", "named"), BAD)
def test_unreadable_usage_is_a_502_with_one_row_and_the_hold_released(
    admin: httpx2.Client, upstream: Upstream, key: str, usage: Any, named: str
) -> None:
    upstream.usage = usage
    assert_bad_response(create(admin, key, False), named)
    assert [(row["status_code"], row["spend"]) for row in logs(admin, key)] == [(502, 0.0)]
    assert_released_and_not_credited(admin, upstream, key)


@pytest.mark.parametrize(("usage", "named"), BAD)
def test_a_stream_with_unreadable_usage_ends_with_an_error_event_and_one_502_row(
    admin: httpx2.Client, upstream: Upstream, key: str, usage: Any, named: str
) -> None:
    upstream.usage = usage
    response = create(admin, key, True)
    assert response.status_code == 200
    events = [block.split("\n") for block in response.text.strip().split("\n\n")]
    assert [lines[0] for lines in events] == ["event: response.created", "event: error"], response.text
    error = json.loads(events[-1][1].removeprefix("data: "))
    assert error["code"] == "upstream_bad_response" and named in error["message"], error
    assert [(row["status_code"], row["spend"]) for row in logs(admin, key)] == [(502, 0.0)]
    assert_released_and_not_credited(admin, upstream, key)
