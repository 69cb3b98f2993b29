"""The access log over real sockets: every 4xx and 5xx leaves a line with its request id; successes on demand; the
line names the key alias, model and tokens, never a key or message text."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from hub.app import create_app
from hub.config import parse_config
from hub.server import build_app
from tests.fakes.openai_upstream import API_KEY, FakeOpenAI
from tests.support.servers import serve_app

MASTER_KEY = "sk-ops-master-secret"
SECRET_TEXT = "the launch code is 0000"


def _access(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.__dict__["access"] for r in caplog.records if r.name == "toolhub.access"]


def _lines_of(caplog: pytest.LogCaptureFixture, answers: list[str]) -> dict[str, dict[str, Any]]:
    """The access lines of these request ids, by id. A line is written once the app has returned, which may be just
    after the client has its answer (the server runs in a thread of this process): waited for, at most 10 s."""
    deadline = time.monotonic() + 10
    while True:
        lines = {a["request_id"]: a for a in _access(caplog) if a["request_id"] in answers}
        if len(lines) == len(set(answers)) or time.monotonic() > deadline:
            return lines
        time.sleep(0.01)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A gateway logging every request, with a virtual key aliased `ops-team`; yields (url, key)."""
    tmp: Path = tmp_path_factory.mktemp("access")
    fake = FakeOpenAI()
    with serve_app(fake.app) as upstream:
        entry = {"model": "openai/text", "api_base": f"{upstream}/v1", "api_key": API_KEY}
        config = {
            "model_list": [{"model_name": "text", "litellm_params": entry}],
            "general_settings": {"master_key": MASTER_KEY, "database_url": f"sqlite:///{tmp / 'hub.db'}",
                                 "access_log": "all"},
        }  # fmt: skip
        with serve_app(build_app(parse_config(config, {}))) as url:
            created = httpx2.post(f"{url}/key/generate", headers={"Authorization": f"Bearer {MASTER_KEY}"},
                                  json={"key_alias": "ops-team"})  # fmt: skip
            assert created.status_code == 200, created.text
            yield url, created.json()["key"]


def test_a_chat_request_logs_its_key_alias_model_and_tokens_but_no_key_or_text(
    hub: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    url, key = hub
    caplog.set_level(logging.INFO, logger="toolhub.access")
    with openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="text", messages=[{"role": "user", "content": SECRET_TEXT}]
        )
    usage = raw.parse().usage
    assert usage is not None
    line = _lines_of(caplog, [raw.headers["x-request-id"]])[raw.headers["x-request-id"]]
    assert [a["request_id"] for a in _access(caplog)].count(raw.headers["x-request-id"]) == 1
    assert line == {"method": "POST", "path": "/v1/chat/completions", "status": 200,
                    "request_id": raw.headers["x-request-id"], "key_alias": "ops-team", "model": "text",
                    "duration_ms": line["duration_ms"], "prompt_tokens": usage.prompt_tokens,
                    "completion_tokens": usage.completion_tokens}  # fmt: skip
    assert line["duration_ms"] > 0
    text = caplog.text + repr([r.__dict__ for r in caplog.records])
    assert key not in text and MASTER_KEY not in text and SECRET_TEXT not in text


def test_every_refusal_leaves_a_line_with_its_request_id(
    hub: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    url, key = hub
    caplog.set_level(logging.INFO, logger="toolhub.access")
    auth = {"Authorization": f"Bearer {key}"}
    with httpx2.Client(base_url=url) as client:
        answers = [
            client.post("/v1/chat/completions", headers=auth, json={"model": "text"}),  # 400: no messages
            client.post("/v1/chat/completions", headers=auth, content=b"{not json"),  # 400
            client.post("/v1/chat/completions", headers={"Authorization": "Bearer sk-wrong"}, json={}),  # 401
            client.get("/v1/models/nope", headers=auth),  # 404
            client.get("/no/such/page"),  # 404 outside the API
            client.delete("/v1/models", headers=auth),  # 405
        ]
    assert [a.status_code for a in answers] == [400, 400, 401, 404, 404, 405]
    lines = _lines_of(caplog, [a.headers["x-request-id"] for a in answers])
    for answer in answers:
        line = lines[answer.headers["x-request-id"]]
        assert (line["method"], line["path"], line["status"]) == (
            answer.request.method, answer.request.url.path, answer.status_code)  # fmt: skip
    assert lines[answers[0].headers["x-request-id"]]["key_alias"] == "ops-team"
    assert all(r.levelno == logging.INFO for r in caplog.records if r.name == "toolhub.access")
    assert "sk-wrong" not in caplog.text


def test_by_default_only_errors_are_logged_and_off_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="toolhub.access")
    for mode, expected in (({}, [404]), ({"access_log": "off"}, [])):
        caplog.clear()
        app = create_app(parse_config({"general_settings": mode}, {}))
        with serve_app(app) as url, httpx2.Client(base_url=url) as client:
            assert client.get("/health/liveliness").status_code == 200
            missing = client.get("/nothing-here", headers={"x-request-id": "req-404"})
        assert missing.status_code == 404
        assert [(a["status"], a["request_id"]) for a in _access(caplog)] == [(s, "req-404") for s in expected]


def test_a_crash_is_logged_as_a_500_with_its_request_id(caplog: pytest.LogCaptureFixture) -> None:
    from starlette.routing import Route

    async def boom(request: object) -> None:
        raise RuntimeError("a bug")

    caplog.set_level(logging.INFO, logger="toolhub.access")
    app = create_app(parse_config({}, {}), routes=[Route("/v1/boom", boom)])
    with serve_app(app) as url, httpx2.Client(base_url=url) as client:
        assert client.get("/v1/boom", headers={"x-request-id": "req-boom"}).status_code == 500
    assert [(a["status"], a["request_id"]) for a in _access(caplog)] == [(500, "req-boom")]


def test_a_path_with_control_characters_is_one_escaped_line_never_a_forged_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="toolhub.access")
    app = create_app(parse_config({}, {}))
    with serve_app(app) as url, httpx2.Client(base_url=url) as client:
        answer = client.get("/v1/x%0aINFO%20toolhub.access:%20POST%20/key/generate%20200%00", headers={
            "x-request-id": "req-forged"})  # fmt: skip
    assert answer.status_code == 404
    messages = [r.getMessage() for r in caplog.records if r.name == "toolhub.access"]
    assert len(messages) == 1 and "\n" not in messages[0] and "\x00" not in messages[0]
    assert messages[0].startswith("GET /v1/x\\nINFO toolhub.access: POST /key/generate 200\\x00 404 ")
    assert _access(caplog)[0]["path"] == "/v1/x\nINFO toolhub.access: POST /key/generate 200\x00"  # JSON logs: as sent
