"""`database_url` schemes: PostgreSQL's (with SQLAlchemy's driver spellings) and SQLite's open their database; any
other scheme is refused instead of becoming a SQLite file named after the URL (QA ops finding 2)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hub.storage import StoreError, database_url_problem, is_postgres_url, open_store, sqlite_path
from hub.storage.postgres import PostgresStore
from hub.storage.sqlite import SqliteStore
from tests.storage.conftest import postgres_url_or_skip

pytestmark = pytest.mark.anyio

REFUSED = [
    ("mysql://root:s3cret@db/x", "mysql"),
    ("postgresq://postgres@127.0.0.1:5432/test", "postgresq"),
    ("postgressql://postgres@127.0.0.1/test", "postgressql"),
    ("postgresql+mysqldb://postgres@127.0.0.1/test", "postgresql+mysqldb"),
    ("sqlite+asyncpg:///x.db", "sqlite+asyncpg"),
    ("redis://127.0.0.1:6379/0", "redis"),
]


@pytest.mark.parametrize(("url", "scheme"), REFUSED)
def test_another_scheme_is_refused_naming_it_and_the_supported_ones(
    url: str, scheme: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    problem = database_url_problem(url)
    assert problem is not None
    assert f"unsupported scheme {scheme!r}" in problem
    assert "postgresql://" in problem and "sqlite:///" in problem
    assert "s3cret" not in problem and "127.0.0.1" not in problem
    with pytest.raises(StoreError):
        open_store(url)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("url", "dsn"),
    [
        ("postgresql://u@h:5432/db", "postgresql://u@h:5432/db"),
        ("postgres://u@h/db", "postgres://u@h/db"),
        ("postgresql+asyncpg://u:p@h:5432/db?sslmode=require", "postgresql://u:p@h:5432/db?sslmode=require"),
        ("postgresql+psycopg://u@h/db", "postgresql://u@h/db"),
        ("postgresql+psycopg2://u@h/db", "postgresql://u@h/db"),
        ("postgres+asyncpg://u@h/db", "postgres://u@h/db"),
    ],
)
def test_postgresql_with_or_without_a_driver_part_opens_postgresql(url: str, dsn: str) -> None:
    assert database_url_problem(url) is None and is_postgres_url(url)
    store = open_store(url)
    assert isinstance(store, PostgresStore) and store.url == dsn


@pytest.mark.parametrize(
    ("url", "path"),
    [
        (None, "toolhub.db"),
        ("toolhub.db", "toolhub.db"),
        ("/var/lib/hub.db", "/var/lib/hub.db"),
        ("sqlite:///data/hub.db", "data/hub.db"),
        ("sqlite:////var/lib/hub.db", "/var/lib/hub.db"),
        ("sqlite+aiosqlite:///data/hub.db", "data/hub.db"),
    ],
)
def test_sqlite_urls_and_paths_open_sqlite(url: str | None, path: str) -> None:
    assert database_url_problem(url) is None and not is_postgres_url(url)
    assert sqlite_path(url) == path
    store = open_store(url)
    assert isinstance(store, SqliteStore) and store.path == path


async def test_postgresql_asyncpg_spelling_connects_to_the_same_database() -> None:
    url = postgres_url_or_skip()
    store = open_store(url.replace("postgresql://", "postgresql+asyncpg://", 1))
    await store.connect()
    try:
        await store.ping()
    finally:
        await store.aclose()


@pytest.mark.parametrize("kind", ["directory", "not a database"])
async def test_a_sqlite_file_that_cannot_be_opened_is_a_store_error(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "hub.db"
    if kind == "directory":
        path.mkdir()
    else:
        path.write_bytes(b"not sqlite " * 20)
    store = open_store(f"sqlite:///{path}")
    with pytest.raises(StoreError) as refused:
        await store.connect()
    assert str(refused.value).startswith(f"cannot open SQLite database {path}: ")
    await store.aclose()
