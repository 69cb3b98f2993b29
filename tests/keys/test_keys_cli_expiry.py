"""`toolhub keys list` calls a key expired exactly when the gateway refuses it as expired
(`hub.accounts.keys.is_expired`), even for an expiry time of 0 (the epoch), which the command once read as "never"
because 0 is false."""

from __future__ import annotations

import json
import time
from pathlib import Path

import anyio
import pytest
import yaml

from hub import cli
from hub.accounts.keys import KeyAuthenticator, display_name, hash_key
from hub.accounts.spend import BudgetLedger
from hub.errors import AuthenticationError
from hub.storage import KeyRow, open_store

KEY = "sk-expired-at-the-epoch"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'keys.db'}"


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"model_list": [], "general_settings": {"database_url": database_url}}))
    return str(path)


async def _store_and_authenticate(database_url: str, row: KeyRow) -> str | None:
    """Store `row`, then authenticate its key as the gateway does: the error code it answers with (None: let in)."""
    store = open_store(database_url)
    await store.connect()
    try:
        await store.migrate()
        await store.insert_key(row)
        try:
            await KeyAuthenticator(store, BudgetLedger(store)).authenticate(KEY)
        except AuthenticationError as exc:
            return exc.code
        return None
    finally:
        await store.aclose()


def test_a_key_that_expired_at_the_epoch_is_listed_as_expired_as_the_gateway_refuses_it(
    database_url: str, config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    now = time.time()
    row = KeyRow(token_hash=hash_key(KEY), key_name=display_name(KEY), created_at=now, updated_at=now,
                 key_alias="epoch", expires=0.0)  # fmt: skip
    assert anyio.run(_store_and_authenticate, database_url, row) == "key_expired"

    assert cli.main(["keys", "--config", config, "list"]) == 0
    [line] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert line.split()[5] == "expired"
    assert cli.main(["keys", "--config", config, "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["expires"] == "1970-01-01T00:00:00Z"
