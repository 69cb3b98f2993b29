"""Command-line parsing and backend selection for `python -m tools.postgres_db`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.postgres_db.__main__ import database_from_args, parse_args, sqlite_path
from tools.postgres_db.postgres import AsyncpgDatabase
from tools.postgres_db.sqlite import SqliteDatabase


@pytest.mark.parametrize(
    ("dsn", "path"),
    [
        ("sqlite:///data/app.db", "data/app.db"),
        ("sqlite:////tmp/app.db", "/tmp/app.db"),
        ("sqlite:///:memory:", ":memory:"),
        ("/srv/app.sqlite", "/srv/app.sqlite"),
        ("app.sqlite3", "app.sqlite3"),
    ],
)
def test_sqlite_path_follows_sqlalchemy_urls(dsn: str, path: str) -> None:
    assert sqlite_path(dsn) == path


def test_sqlite_path_rejects_other_schemes() -> None:
    with pytest.raises(ValueError):
        sqlite_path("mysql://root@localhost/db")


def test_dsn_comes_from_the_flag_then_the_environment() -> None:
    env = {"POSTGRES_DB_DSN": "postgresql://a/x", "DATABASE_URL": "postgresql://b/y"}
    assert parse_args(["--dsn", "sqlite:///f.db"], env).dsn == "sqlite:///f.db"
    assert parse_args([], env).dsn == "postgresql://a/x"
    assert parse_args([], {"DATABASE_URL": "postgresql://b/y"}).dsn == "postgresql://b/y"


def test_a_missing_dsn_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc_info:
        parse_args([], {})
    assert exc_info.value.code == 2
    assert "pass --dsn or set POSTGRES_DB_DSN or DATABASE_URL" in capsys.readouterr().err


def test_options_reach_the_postgres_backend() -> None:
    args = parse_args(
        ["--dsn", "postgres://u@h/db", "--allow-writes", "--statement-timeout", "2.5", "--schema", "sales"], {}
    )
    db = database_from_args(args)
    assert isinstance(db, AsyncpgDatabase)
    assert (db.default_schema, db.allow_writes, db.statement_timeout) == ("sales", True, 2.5)
    assert (args.max_rows, args.transport, args.host) == (500, "stdio", "127.0.0.1")


def test_sqlite_backend_needs_an_existing_file_unless_writes_are_allowed(tmp_path: Path) -> None:
    missing = tmp_path / "new.db"
    with pytest.raises(ValueError):
        database_from_args(parse_args(["--dsn", str(missing)], {}))
    db = database_from_args(parse_args(["--dsn", str(missing), "--allow-writes"], {}))
    assert isinstance(db, SqliteDatabase)
    assert db.allow_writes
