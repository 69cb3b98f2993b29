"""`toolhub keys create` checks its values with the admin API's own model (`KeyFields` of `POST /key/generate`): what
the API refuses, the command line refuses too, with the API's message and the flag's name (QA ops finding 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from hub import cli

MASTER = "sk-toolhub-test-master"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TOOLHUB_MASTER_KEY", MASTER)
    path = tmp_path / "config.yaml"
    general = {"master_key": "os.environ/TOOLHUB_MASTER_KEY", "database_url": f"sqlite:///{tmp_path / 'keys.db'}"}
    path.write_text(yaml.safe_dump({"model_list": [], "general_settings": general}))
    return str(path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-budget", "-1"], "--max-budget: Input should be greater than or equal to 0"),
        (["--max-budget", "nan"], "--max-budget: Input should be a finite number"),
        (["--max-budget", "inf"], "--max-budget: Input should be a finite number"),
        (["--rpm", "-5"], "--rpm: Input should be greater than or equal to 0"),
        (["--tpm", "-1"], "--tpm: Input should be greater than or equal to 0"),
        (["--rpm", str(2**63)], "--rpm: Input should be less than or equal to 9223372036854775807"),
        (["--budget-duration", "0s"], "--budget-duration: a budget period must be longer than 0s"),
        (["--budget-duration", "soon"], "--budget-duration: invalid duration 'soon'"),
        (["--duration", "forever"], "--duration: invalid duration 'forever'"),
        (["--alias", ""], "--alias: String should have at least 1 character"),
    ],
)
def test_values_the_api_refuses_are_refused_and_nothing_is_stored(
    config: str, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert cli.main(["keys", "--config", config, "create", *args]) == 2
    assert f"toolhub keys: {message}" in capsys.readouterr().err
    assert cli.main(["keys", "--config", config, "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_values_the_api_takes_are_stored(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--alias", "ops", "--models", "a, b", "--max-budget", "0", "--budget-duration", "30d", "--rpm", "0",
            "--tpm", "100", "--duration", "permanent", "--json"]  # fmt: skip
    assert cli.main(["keys", "--config", config, "create", *args]) == 0
    created = json.loads(capsys.readouterr().out)
    shown = ("key_alias", "models", "max_budget", "budget_duration", "rpm_limit", "tpm_limit", "expires")
    assert {name: created[name] for name in shown} == {
        "key_alias": "ops",
        "models": ["a", "b"],
        "max_budget": 0.0,
        "budget_duration": "30d",
        "rpm_limit": 0,
        "tpm_limit": 100,
        "expires": None,
    }
