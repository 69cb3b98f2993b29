"""Config reload while requests run: POST /config/reload (master key) and SIGHUP swap models, router settings and
prices; a broken file is refused with the start-up error and the running config stays."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml

from hub.config import load_config
from hub.server import build_app
from tests.fakes.openai_upstream import API_KEY, FakeOpenAI
from tests.mcp.conftest import MASTER_KEY, children_matching, mcp_client, tool_server
from tests.mcp.test_body_limits import AUTH, MIB, padded_call, posts
from tests.mcp.test_lean import headers, open_session
from tests.support.servers import serve_app, toolhub_process

MASTER = {"Authorization": "Bearer sk-reload-master"}
ASK = [{"role": "user", "content": "hi"}]


def entry(alias: str, upstream: str, model: str = "text", **params: Any) -> dict[str, Any]:
    return {"model_name": alias, "litellm_params": {"model": f"openai/{model}", "api_base": f"{upstream}/v1",
                                                    "api_key": API_KEY, **params}}  # fmt: skip


def write(path: Path, models: list[dict[str, Any]], mcp: dict[str, Any] | None = None, **general: Any) -> None:
    settings = {"master_key": "sk-reload-master", "database_url": f"sqlite:///{path.parent / 'hub.db'}", **general}
    path.write_text(yaml.safe_dump({"model_list": models, "general_settings": settings, "mcp_servers": mcp or {}}))


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with serve_app(FakeOpenAI().app) as url:
        yield url


def models(url: str) -> list[str]:
    return [m["id"] for m in httpx2.get(f"{url}/v1/models", headers=MASTER).json()["data"]]


def chat(url: str, model: str) -> httpx2.Response:
    return httpx2.post(f"{url}/v1/chat/completions", headers=MASTER, json={"model": model, "messages": ASK},
                       timeout=20)  # fmt: skip


def test_a_reload_swaps_models_and_prices_while_a_request_runs_on_the_old_set(tmp_path: Path, upstream: str) -> None:
    path = tmp_path / "config.yaml"
    write(path, [entry("old", upstream), entry("slow", upstream, "slow-1"), entry("priced", upstream)])
    with serve_app(build_app(load_config(path))) as url:
        assert chat(url, "priced").headers["x-toolhub-cost"] == "0"
        in_flight: list[httpx2.Response] = []
        runner = threading.Thread(target=lambda: in_flight.append(chat(url, "slow")))
        runner.start()
        time.sleep(0.3)  # the slow request has resolved its route and waits on the upstream (1 s)
        write(path, [entry("slow", upstream, "slow-1"), entry("new", upstream),
                     entry("priced", upstream, input_cost_per_token=1.0)], max_tool_rounds=3,
              redis_url="redis://127.0.0.1:1/0")  # fmt: skip
        reloaded = httpx2.post(f"{url}/config/reload", headers=MASTER)
        runner.join(20)
        assert reloaded.status_code == 200, reloaded.text
        assert reloaded.json() == {"reloaded": True, "models": ["new", "priced", "slow"], "added": ["new"],
                                   "removed": ["old"], "mcp_servers": {"added": [], "removed": [], "restarted": []},
                                   "restart_needed": ["redis_url"]}  # fmt: skip
        assert in_flight[0].status_code == 200
        assert models(url) == ["slow", "new", "priced"]
        assert chat(url, "new").status_code == 200
        assert chat(url, "old").status_code == 404
        assert float(chat(url, "priced").headers["x-toolhub-cost"]) > 0


@pytest.mark.parametrize(
    ("text", "path_in_message"),
    [("model_list: [\n  - bad indent\n x", "is not valid YAML"),
     ("model_list:\n  - model_name: a\n    litellm_params: {model: bedrock/x}\n",
      "model_list[0].litellm_params.model: unknown provider 'bedrock'")],
)  # fmt: skip
def test_a_broken_file_is_refused_and_the_running_config_stays(
    tmp_path: Path, upstream: str, text: str, path_in_message: str
) -> None:
    path = tmp_path / "config.yaml"
    write(path, [entry("kept", upstream)])
    with serve_app(build_app(load_config(path))) as url:
        path.write_text(text)
        refused = httpx2.post(f"{url}/config/reload", headers=MASTER)
        assert refused.status_code == 400
        error = refused.json()["error"]
        assert error["code"] == "invalid_config" and path_in_message in error["message"]
        assert models(url) == ["kept"] and chat(url, "kept").status_code == 200
        assert httpx2.post(f"{url}/config/reload").status_code == 401


def test_sighup_reloads_the_file(tmp_path: Path, upstream: str) -> None:
    path = tmp_path / "config.yaml"
    write(path, [entry("first", upstream)])
    with toolhub_process(path) as (url, proc):
        write(path, [entry("first", upstream), entry("second", upstream)])
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while models(url) != ["first", "second"]:
            assert time.monotonic() < deadline, "SIGHUP did not reload"
            time.sleep(0.05)
        assert chat(url, "second").status_code == 200
        assert proc.poll() is None


def hub_tools(url: str, key: str = "sk-reload-master") -> set[str]:
    listed = httpx2.get(f"{url}/mcp/tools/list", headers={"Authorization": f"Bearer {key}"}, timeout=20).json()
    return {tool["name"] for tool in listed["tools"]}


def wait_for(predicate: Any) -> None:
    deadline = time.monotonic() + 20
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_reload_starts_added_mcp_servers_and_stops_removed_ones(tmp_path: Path, upstream: str) -> None:
    path, gone, kept, new = tmp_path / "config.yaml", *(f"reload-{uuid.uuid4().hex}" for _ in range(3))
    write(path, [entry("chat", upstream)], {"a": tool_server(gone), "b": tool_server(kept)})
    with serve_app(build_app(load_config(path))) as url:
        wait_for(lambda: {"a__echo", "b__echo"} <= hub_tools(url))
        write(path, [entry("chat", upstream)], {"b": tool_server(kept), "c": tool_server(new)})
        reloaded = httpx2.post(f"{url}/config/reload", headers=MASTER, timeout=30)
        assert reloaded.status_code == 200, reloaded.text
        assert reloaded.json()["mcp_servers"] == {"added": ["c"], "removed": ["a"], "restarted": []}
        wait_for(lambda: "c__echo" in hub_tools(url))
        assert not any(name.startswith("a__") for name in hub_tools(url))
        wait_for(lambda: not children_matching(gone))  # the removed server's process is stopped
        assert children_matching(kept)  # the unchanged one goes on


@pytest.mark.anyio
async def test_a_reload_applies_tool_search_settings_from_the_next_listing(tmp_path: Path, upstream: str) -> None:
    path, marker = tmp_path / "config.yaml", f"reload-{uuid.uuid4().hex}"
    write(path, [entry("chat", upstream)], {"b": tool_server(marker)}, tool_exposure="all")
    with serve_app(build_app(load_config(path))) as url:
        wait_for(lambda: "b__echo" in hub_tools(url))
        async with mcp_client(f"{url}/mcp", "sk-reload-master") as client:
            before = [t.name for t in (await client.list_tools()).tools]
        write(path, [entry("chat", upstream)], {"b": tool_server(marker)}, tool_exposure="search",
              always_expose=["b/echo"], tool_result_ttl_seconds=60)  # fmt: skip
        reloaded = httpx2.post(f"{url}/config/reload", headers=MASTER, timeout=30)
        async with mcp_client(f"{url}/mcp", "sk-reload-master") as client:
            after = [t.name for t in (await client.list_tools()).tools]
    assert reloaded.status_code == 200 and reloaded.json()["restart_needed"] == []
    assert "b__echo" in before and not any(name.startswith("hub__") for name in before)
    assert after == ["hub__search_tools", "hub__describe_tool", "hub__call_tool", "hub__read_result", "b__echo"]


def test_a_reload_adding_a_server_named_like_the_meta_tools_is_refused(tmp_path: Path, upstream: str) -> None:
    path = tmp_path / "config.yaml"
    write(path, [entry("chat", upstream)])
    with serve_app(build_app(load_config(path))) as url:
        write(path, [entry("chat", upstream), entry("new", upstream)], {"hub": tool_server()})
        refused = httpx2.post(f"{url}/config/reload", headers=MASTER, timeout=30)
        assert models(url) == ["chat"]
    error = refused.json()["error"]
    assert (refused.status_code, error["code"], error["param"]) == (400, "invalid_config", "mcp_servers.hub")
    assert "hub__search_tools" in error["message"]


def test_a_reload_applies_the_body_limit_to_mcp_endpoints_and_servers_added(tmp_path: Path, upstream: str) -> None:
    path, size = tmp_path / "config.yaml", MIB + MIB // 2
    write(path, [entry("chat", upstream)], {"tool": tool_server()}, master_key=MASTER_KEY, max_request_size_mb=1)
    sse = f"/sse/messages/?session_id={uuid.uuid4().hex}"  # the size is checked before the (unknown) session
    with serve_app(build_app(load_config(path))) as url:
        wait_for(lambda: "tool__pid" in hub_tools(url, MASTER_KEY))
        before = [a.status_code for a in posts(url, size)] + [
            httpx2.post(url + sse, headers=AUTH, content=b"x" * size).status_code
        ]
        write(path, [entry("chat", upstream)], {"tool": tool_server(), "late": tool_server()}, master_key=MASTER_KEY,
              max_request_size_mb=2)  # fmt: skip
        reloaded = httpx2.post(f"{url}/config/reload", headers=AUTH, timeout=30)
        after = [a.status_code for a in posts(url, size)]
        after.append(httpx2.post(url + sse, headers=AUTH, content=b"x" * size).status_code)
        late = httpx2.post(
            f"{url}/mcp/late",
            headers=headers(open_session(f"{url}/mcp/late", {})),
            content=padded_call("pid", size),
            timeout=60,
        )
    assert reloaded.json()["restart_needed"] == [] and before == [413] * 4
    assert after[:3] == [200] * 3 and after[3] != 413 and late.status_code == 200, (after, late.text[:200])
