"""Claude Code (npm @anthropic-ai/claude-code, from tests/node) in headless mode against Toolhub's /v1/messages:
`claude -p` with ANTHROPIC_BASE_URL on an Anthropic-, an OpenAI- and a Gemini-backed alias, each using Claude Code's
own Read tool on a file of the test's."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.config import parse_config
from hub.server import build_app
from tests.fakes import anthropic_upstream, gemini_upstream, openai_upstream
from tests.fakes.claude_code_models import FakeAnthropicReader, FakeGeminiReader
from tests.fakes.responses_upstream import FakeResponses
from tests.support.peers import require_files
from tests.support.servers import ROOT, serve_app

MASTER_KEY = "sk-toolhub-claude-code"
CLAUDE = ROOT / "tests" / "node" / "node_modules" / "@anthropic-ai" / "claude-code" / "bin" / "claude.exe"
SECRET = "secret-content-42"


class Fakes:
    def __init__(self) -> None:
        self.anthropic = FakeAnthropicReader()
        self.openai = FakeResponses()
        self.gemini = FakeGeminiReader()


@pytest.fixture(scope="module")
def fakes() -> Fakes:
    return Fakes()


@pytest.fixture(scope="module")
def gateway_url(fakes: Fakes) -> Iterator[str]:
    with serve_app(fakes.anthropic.app) as a, serve_app(fakes.openai.app) as o, serve_app(fakes.gemini.app) as g:
        models = [
            {"model_name": "claude-reader", "litellm_params": {"model": "anthropic/claude-reader", "api_base": a,
                                                               "api_key": anthropic_upstream.API_KEY}},
            {"model_name": "gpt-reader", "litellm_params": {"model": "openai/caller", "api_base": f"{o}/v1",
                                                            "api_key": openai_upstream.API_KEY}},
            {"model_name": "gemini-reader", "litellm_params": {"model": "gemini/gemini-3-reader", "api_base": g,
                                                               "api_key": gemini_upstream.API_KEY}},
        ]  # fmt: skip
        config = {"model_list": models, "general_settings": {"master_key": MASTER_KEY}}
        with serve_app(build_app(parse_config(config, {}))) as url:
            yield url


def claude(gateway_url: str, model: str, prompt: str, folder: Path) -> dict[str, object]:
    """`claude -p` in `folder` (its HOME too), offline but for the gateway; its JSON result."""
    require_files(CLAUDE, hint="npm ci --prefix tests/node")
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG")}
    env.update(HOME=str(folder), ANTHROPIC_BASE_URL=gateway_url, ANTHROPIC_API_KEY=MASTER_KEY, NO_PROXY="127.0.0.1",
               DISABLE_AUTOUPDATER="1", DISABLE_TELEMETRY="1", DISABLE_ERROR_REPORTING="1",
               CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1")  # fmt: skip
    command = [str(CLAUDE), "-p", prompt, "--model", model, "--output-format", "json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, cwd=folder,
                          stdin=subprocess.DEVNULL, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("model", ["claude-reader", "gpt-reader", "gemini-reader"])
def test_claude_code_reads_a_file_with_its_own_tool_through_any_alias(
    gateway_url: str, model: str, tmp_path: Path
) -> None:
    note = tmp_path / "note.txt"
    note.write_text(SECRET + "\n")
    result = claude(gateway_url, model, f"What does {note} say?", tmp_path)
    assert (result["subtype"], result["is_error"], result["num_turns"]) == ("success", False, 2)
    assert SECRET in str(result["result"])  # the model's answer quotes what Read gave it


def test_claude_codes_first_turn_reached_the_anthropic_upstream_with_its_tools(
    gateway_url: str, fakes: Fakes, tmp_path: Path
) -> None:
    note = tmp_path / "note.txt"
    note.write_text(SECRET + "\n")
    claude(gateway_url, "claude-reader", f"Read {note}", tmp_path)
    first = next(r for r in reversed(fakes.anthropic.requests) if len(r["messages"]) == 1)
    assert first["model"] == "claude-reader" and "Read" in [t["name"] for t in first["tools"]]
    assert not fakes.anthropic.refusals
