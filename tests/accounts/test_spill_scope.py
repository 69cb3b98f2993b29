"""Spill files and journals are named after the database (never its credentials), so none is replayed elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.accounts import accounting
from hub.accounts.accounting import LEGACY_SPILL, _adopt_legacy_spill, spill_path  # pyright: ignore[reportPrivateUsage]
from hub.config import Config, parse_config
from hub.storage.writer import database_scope


def config(database_url: str, **general: str) -> Config:
    model = {"model_name": "m", "litellm_params": {"model": "openai/m", "api_key": "sk-x"}}
    return parse_config({"model_list": [model], "general_settings": {"database_url": database_url, **general}}, {})


def test_a_password_rotation_keeps_the_name_and_another_database_gets_its_own() -> None:
    base = database_scope("postgresql://toolhub:old-secret@db.internal:5432/toolhub")
    assert database_scope("postgresql://toolhub:new-secret@db.internal/toolhub") == base
    assert database_scope("postgres://other-user@db.internal:5432/toolhub") == base
    others = {
        database_scope("postgresql://toolhub:old-secret@db.internal:5432/billing"),
        database_scope("postgresql://toolhub:old-secret@db2.internal:5432/toolhub"),
        database_scope("postgresql://toolhub:old-secret@db.internal:5433/toolhub"),
        database_scope("postgresql://toolhub:old-secret@db.internal:5432/toolhub?search_path=tenant_b"),
        database_scope("postgresql://toolhub:old-secret@db.internal:5432/toolhub", "tenant_c"),
    }
    assert base not in others and len(others) == 5


def test_a_sqlite_file_has_one_name_however_it_is_spelt() -> None:
    # the working directory is not changed: hubs served by session fixtures in this process resolve their relative
    # spill and journal paths against it while they run
    assert database_scope("sqlite:///toolhub.db") == database_scope(f"sqlite:///{Path.cwd() / 'toolhub.db'}")
    assert database_scope("sqlite:///toolhub.db") != database_scope("sqlite:///other.db")


def test_the_default_spill_file_of_each_postgres_database_is_its_own() -> None:
    one = spill_path(config("postgresql://u:p@127.0.0.1:5432/one"))
    rotated = spill_path(config("postgresql://u:rotated@127.0.0.1:5432/one"))
    two = spill_path(config("postgresql://u:p@127.0.0.1:5432/two"))
    assert one == rotated != two
    assert one.name == f"toolhub-usage-spill-{database_scope('postgresql://127.0.0.1/one')}.jsonl"
    assert spill_path(config("postgresql://u:p@127.0.0.1/one", usage_spill_path="/var/spill.jsonl")) == Path(
        "/var/spill.jsonl"
    )


def test_a_spill_file_of_the_unnamed_default_is_adopted_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    legacy = tmp_path / LEGACY_SPILL  # in tmp_path, not the working directory the session fixtures' hubs share
    monkeypatch.setattr(accounting, "LEGACY_SPILL", str(legacy))
    legacy.write_text('["usage"]\n')
    first, second = config("postgresql://u:p@127.0.0.1/one"), config("postgresql://u:p@127.0.0.1/two")
    adopted = _adopt_legacy_spill(first, tmp_path / spill_path(first).name)
    assert adopted.read_text() == '["usage"]\n' and not legacy.exists()
    assert not _adopt_legacy_spill(second, tmp_path / spill_path(second).name).exists()
