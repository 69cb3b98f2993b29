"""`toolhub keys` as a subprocess against the configured database, with a running gateway honouring its keys."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import openai
import pytest
import yaml

from tests.keys.conftest import config_dict, gateway, sdk
from tests.support.servers import ROOT

USER = [{"role": "user", "content": "hi"}]


def toolhub_keys(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hub", "keys", "--config", str(config), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip


def test_keys_made_and_revoked_on_the_command_line_work_on_a_running_gateway(
    upstream: str, database_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(config_dict(upstream, database_url)))
    created = toolhub_keys(config, "create", "--alias", "cli-key", "--models", "text", "--rpm", "50", "--json")
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)["key"]
    assert key.startswith("sk-")
    listed = toolhub_keys(config, "list")
    assert listed.returncode == 0 and "cli-key" in listed.stdout and key not in listed.stdout

    with gateway(upstream, database_url, key_ttl=0) as url, sdk(url, key) as client:
        assert client.chat.completions.create(model="text", messages=USER).choices[0].message.content == "You said: hi"
        with pytest.raises(openai.PermissionDeniedError):
            client.chat.completions.create(model="json", messages=USER)
        assert toolhub_keys(config, "block", "cli-key").returncode == 0
        with pytest.raises(openai.PermissionDeniedError) as blocked:
            client.models.list()
        assert blocked.value.code == "key_blocked"
        assert toolhub_keys(config, "unblock", "cli-key").returncode == 0
        info = toolhub_keys(config, "info", "cli-key")
        assert json.loads(info.stdout)["key_alias"] == "cli-key"
        revoked = toolhub_keys(config, "revoke", "cli-key")
        assert revoked.returncode == 0 and "revoked cli-key" in revoked.stdout
        with pytest.raises(openai.AuthenticationError):
            client.models.list()
    missing = toolhub_keys(config, "revoke", "cli-key")
    assert missing.returncode == 1 and "no key 'cli-key'" in missing.stderr


def test_a_bad_duration_is_refused_with_a_message(upstream: str, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(config_dict(upstream, f"sqlite:///{tmp_path / 'k.db'}")))
    result = toolhub_keys(config, "create", "--duration", "forever")
    assert result.returncode == 2 and "invalid duration 'forever'" in result.stderr
