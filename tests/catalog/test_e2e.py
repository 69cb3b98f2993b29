"""End to end over loopback sockets: the real server (`hub.server.build_app`) with real stdio MCP upstreams, the
official `openai` SDK as the client, and a scripted model upstream that only ever sees the meta-tools.

The model finds `postgres_db__list_tables` with `hub__search_tools`, calls it with `hub__call_tool` and answers with
its result; another conversation gets a 100,000-character result as a head and a handle and reads its end with
`hub__read_result`. Every request the model gets carries the same tool definitions, byte for byte.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.catalog.meta import meta_functions
from hub.config import parse_config
from hub.server import build_app
from tests.support.hub import make_db, wait_for_tools
from tests.support.servers import ROOT, serve_app

MASTER_KEY = "sk-catalog-master"
HANDLE = re.compile(r'hub__read_result\(handle="(res_[0-9a-f]+)"')


class SearchingModel:
    """A model that searches for a tool, calls it through `hub__call_tool`, reads a stored result's end, answers."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.app = Starlette(routes=[Route("/v1/chat/completions", self.chat, methods=["POST"])])

    async def chat(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.requests.append(body)
        return JSONResponse(_completion(body["model"], self.turn(body["messages"])))

    def turn(self, messages: list[dict[str, Any]]) -> tuple[str, dict[str, Any]] | str:
        task = next(m["content"] for m in messages if m["role"] == "user")
        results = [m["content"] for m in messages if m["role"] == "tool"]
        if not results:
            return "hub__search_tools", {"query": task, "limit": 3}
        if len(results) == 1:
            found = orjson.loads(results[0])["tools"][0]["name"]
            arguments = {"size": 100_000} if "big" in task else {}
            return "hub__call_tool", {"name": found, "arguments": arguments}
        handle = HANDLE.search(results[-1])
        if len(results) == 2 and handle:
            return "hub__read_result", {"handle": handle.group(1), "offset": 99_990, "limit": 50}
        return f"Answer: {results[-1]}"


def _completion(model: str, turn: tuple[str, dict[str, Any]] | str) -> dict[str, Any]:
    if isinstance(turn, str):
        message: dict[str, Any] = {"role": "assistant", "content": turn}
        finish = "stop"
    else:
        call = {"id": "call_1", "type": "function",
                "function": {"name": turn[0], "arguments": orjson.dumps(turn[1]).decode()}}  # fmt: skip
        message, finish = {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}  # fmt: skip


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, SearchingModel]]:
    tmp: Path = tmp_path_factory.mktemp("catalog")
    shop = tmp / "shop.db"
    make_db(shop)
    model = SearchingModel()
    with serve_app(model.app) as upstream:
        entry = {"model": "openai/searcher", "api_base": f"{upstream}/v1", "api_key": "sk-upstream"}
        config: dict[str, Any] = {
            "model_list": [{"model_name": "searcher", "litellm_params": entry}],
            "general_settings": {"master_key": MASTER_KEY, "database_url": f"sqlite:///{tmp / 'hub.db'}",
                                 "tool_exposure": "search", "max_tool_result_chars": 20_000},
            "mcp_servers": {
                "postgres_db": {"transport": "stdio", "command": sys.executable, "cwd": str(ROOT),
                                "args": ["-m", "tools.postgres_db", "--dsn", f"sqlite:///{shop}"]},
                "big": {"transport": "stdio", "command": sys.executable,
                        "args": [str(ROOT / "tests" / "mcp" / "servers" / "big_server.py")]},
            },
        }  # fmt: skip
        with serve_app(build_app(parse_config(config, {}))) as url:
            wait_for_tools(url, {"postgres_db", "big"}, MASTER_KEY)
            yield url, model


def _ask(url: str, task: str) -> str:
    with openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=60) as client:
        completion = client.chat.completions.create(
            model="searcher", messages=[{"role": "user", "content": task}],
            tools=[{"type": "mcp", "require_approval": "never"}],  # pyright: ignore[reportArgumentType]
        )  # fmt: skip
    return completion.choices[0].message.content or ""


def test_the_model_finds_and_calls_a_tool_it_was_never_shown(hub: tuple[str, SearchingModel]) -> None:
    url, model = hub
    before = len(model.requests)
    answer = _ask(url, "list the tables in the database")
    assert "orders" in answer and "users" in answer
    sent = [orjson.dumps(body["tools"]) for body in model.requests[before:]]
    assert len(sent) == 3 and len(set(sent)) == 1  # byte-identical on every turn: prompt caches keep hitting
    assert orjson.loads(sent[0]) == meta_functions()


def test_a_large_result_reaches_the_model_as_a_head_and_a_handle_and_is_read_back(
    hub: tuple[str, SearchingModel],
) -> None:
    url, model = hub
    before = len(model.requests)
    answer = _ask(url, "a big result please")
    assert answer.startswith("Answer: [res_") and "characters 99990-100000 of 100000" in answer
    assert answer.endswith("x" * 10)
    stored = next(m["content"] for m in model.requests[before + 2]["messages"] if m["role"] == "tool"
                  and "Toolhub stored" in m["content"])  # fmt: skip
    assert len(stored) <= 20_000 and "100000 characters" in stored
    assert len({orjson.dumps(body["tools"]) for body in model.requests[before:]}) == 1
