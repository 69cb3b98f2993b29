"""`toolhub check-config` prints each group's deployments, strategy and fallback chains, and refuses bad chains."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hub import cli


def entry(name: str, **params: object) -> dict[str, object]:
    return {"model_name": name, "litellm_params": {"model": "openai/x", "api_base": "http://x/v1", **params}}


def write(tmp_path: Path, router: dict[str, object]) -> str:
    raw = {"model_list": [entry("a", order=1), entry("a", order=2), entry("b"), entry("c")], "router_settings": router}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_check_config_prints_groups_strategy_and_fallback_chains(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    router = {"routing_strategy": "least-busy", "num_retries": 2, "fallbacks": [{"a": ["b", "c"]}],
              "context_window_fallbacks": [{"a": ["c"]}]}  # fmt: skip
    assert cli.main(["check-config", write(tmp_path, router)]) == 0
    out = capsys.readouterr().out.splitlines()
    start = out.index("router: least-busy; num_retries 2; allowed_fails 3 a minute, cooldown 5 s; timeout each "
                      "deployment's own")  # fmt: skip
    assert out[start + 1 : start + 4] == [
        "  a: 2 deployments, orders 1/2; fallbacks -> b -> c; context_window_fallbacks -> c",
        "  b: 1 deployment",
        "  c: 1 deployment",
    ]


def test_check_config_refuses_a_fallback_cycle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check-config", write(tmp_path, {"fallbacks": [{"a": ["b"]}, {"b": ["a"]}]})]) != 0
    assert "router_settings.fallbacks: fallbacks form a cycle: a -> b -> a" in capsys.readouterr().err


def test_check_config_refuses_an_unknown_fallback_group(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check-config", write(tmp_path, {"fallbacks": [{"a": ["gpt-9"]}]})]) != 0
    assert "'a' falls back to 'gpt-9', which is no model_name in model_list" in capsys.readouterr().err
