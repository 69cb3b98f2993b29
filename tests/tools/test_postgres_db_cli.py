"""Command-line parsing and backend selection for `python -m tools.postgres_db`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.postgres_db.__main__ import database_from_args, parse_args, sqlite_path
from tools.postgres_db._limits import Limits
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


@pytest.mark.parametrize(
    ("argv", "environ", "expected"),
    [
        ([], {}, (False, False)),
        (["--allow-unsafe-role", "--allow-toolhub-tables"], {}, (True, True)),
        ([], {"POSTGRES_DB_ALLOW_UNSAFE_ROLE": "1", "POSTGRES_DB_ALLOW_TOOLHUB_TABLES": "true"}, (True, True)),
        ([], {"POSTGRES_DB_ALLOW_UNSAFE_ROLE": "0", "POSTGRES_DB_ALLOW_TOOLHUB_TABLES": ""}, (False, False)),
    ],
)
def test_safety_switches_come_from_flags_or_the_environment(
    argv: list[str], environ: dict[str, str], expected: tuple[bool, bool]
) -> None:
    args = parse_args(["--dsn", "postgresql://u@h/db", *argv], environ)
    db = database_from_args(args)
    assert isinstance(db, AsyncpgDatabase)
    assert (db.allow_unsafe_role, db.allow_toolhub_tables) == expected


def test_limits_reach_both_backends(sqlite_file: Path) -> None:
    limits = ["--max-value-bytes", "1000", "--max-result-bytes", "5000", "--max-concurrent-queries", "2"]
    limits += ["--queue-timeout", "1.5"]
    expected = Limits(max_value_bytes=1000, max_result_bytes=5000, max_concurrent_queries=2, queue_timeout=1.5)
    postgres = database_from_args(parse_args(["--dsn", "postgresql://u@h/db", *limits], {}))
    assert isinstance(postgres, AsyncpgDatabase)
    assert (postgres.limits, postgres.max_pool_size) == (expected, 3)
    sqlite = database_from_args(parse_args(["--dsn", str(sqlite_file), *limits], {}))
    assert isinstance(sqlite, SqliteDatabase)
    assert sqlite.limits == expected
    assert parse_args(["--dsn", "x.db"], {}).max_value_bytes == 65536


@pytest.mark.parametrize(
    "flag", ["--max-value-bytes", "--max-result-bytes", "--max-concurrent-queries", "--queue-timeout"]
)
def test_limits_must_be_positive(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc_info:
        parse_args(["--dsn", "x.db", flag, "0"], {})
    assert exc_info.value.code == 2
    assert "timeouts, row, byte and concurrency limits must be positive" in capsys.readouterr().err


def test_demo_serves_the_shipped_shop_and_ignores_the_environment() -> None:
    db = database_from_args(parse_args(["--demo"], {"DATABASE_URL": "postgresql://hub@h/toolhub"}))
    assert isinstance(db, SqliteDatabase)
    assert (db.path, db.allow_writes) == (":memory:", False)
    assert db.seed is not None
    assert db.seed.startswith("-- A small shop")


def test_demo_and_a_dsn_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc_info:
        parse_args(["--demo", "--dsn", "x.db"], {})
    assert exc_info.value.code == 2
    assert "--demo serves its own database: leave out --dsn" in capsys.readouterr().err
