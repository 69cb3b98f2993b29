"""Fixtures for the built-in tool servers: a throw-away PostgreSQL schema and a SQLite file with the same tables."""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from tests.support.peers import missing_peer

POSTGRES_URL_ENV = "TOOLHUB_TEST_POSTGRES_URL"

PG_DDL = """
CREATE TABLE customers (
    id serial PRIMARY KEY,
    email text NOT NULL UNIQUE,
    name text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    amount numeric(10, 2) NOT NULL CONSTRAINT amount_positive CHECK (amount > 0),
    status text NOT NULL DEFAULT 'new',
    placed_on date,
    ref uuid,
    CONSTRAINT orders_customer_ref_key UNIQUE (customer_id, ref)
);
COMMENT ON TABLE orders IS 'Customer orders';
CREATE TABLE y (id integer);
INSERT INTO customers (email, name) VALUES ('ada@example.com', 'Ada'), ('bob@example.com', 'Bob'),
    ('cy@example.com', NULL);
INSERT INTO orders (customer_id, amount, status, placed_on, ref) VALUES
    (1, 10.50, 'paid', '2024-01-02', '00000000-0000-0000-0000-000000000001'),
    (1, 20.00, 'new', '2024-01-03', NULL),
    (2, 5.25, 'paid', '2024-02-01', NULL),
    (2, 7.75, 'new', NULL, NULL),
    (3, 99.99, 'refunded', '2024-03-04', NULL);
INSERT INTO y VALUES (1);
"""

SQLITE_DDL = """
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    amount REAL NOT NULL CONSTRAINT amount_positive CHECK (amount > 0),
    status TEXT NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'paid', 'refunded')),
    placed_on TEXT,
    CONSTRAINT orders_customer_placed_key UNIQUE (customer_id, placed_on)
);
CREATE TABLE y (id INTEGER);
CREATE VIEW paid_orders AS SELECT * FROM orders WHERE status = 'paid';
INSERT INTO customers (email, name) VALUES ('ada@example.com', 'Ada'), ('bob@example.com', 'Bob'),
    ('cy@example.com', NULL);
INSERT INTO orders (customer_id, amount, status, placed_on) VALUES
    (1, 10.5, 'paid', '2024-01-02'), (1, 20.0, 'new', '2024-01-03'), (2, 5.25, 'paid', '2024-02-01'),
    (2, 7.75, 'new', NULL), (3, 99.99, 'refunded', '2024-03-04');
INSERT INTO y VALUES (1);
"""


@pytest.fixture
def anyio_backend() -> str:
    """Run async tests on asyncio only (asyncpg needs it)."""
    return "asyncio"


@pytest.fixture
def postgres_url() -> str:
    """The test database URL, or skip when it is not configured."""
    url = os.environ.get(POSTGRES_URL_ENV)
    if not url:
        missing_peer(f"set {POSTGRES_URL_ENV}=postgresql://postgres@127.0.0.1:5432/test to run")
    return url


@pytest.fixture
async def pg_schema(postgres_url: str) -> AsyncIterator[str]:
    """Create a uniquely named schema holding the sample tables (analyzed), and drop it afterwards."""
    schema = f"toolhub_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"; SET search_path TO "{schema}";')
        await conn.execute(f"{PG_DDL} ANALYZE customers, orders, y;")
        yield schema
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


MakeRole = Callable[[str], Awaitable[str]]
"""Create a login role with the given grants ({role} is replaced by its name) and return a DSN for it."""


def url_for_role(url: str, role: str) -> str:
    """The same database URL, logging in as `role` (the test server trusts local connections)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{role}@{host}"))


@pytest.fixture
async def make_role(postgres_url: str) -> AsyncIterator[MakeRole]:
    """Create uniquely named login roles for a test and drop them (and whatever they were granted) afterwards."""
    conn = await asyncpg.connect(postgres_url)
    roles: list[str] = []

    async def make(grants: str) -> str:
        role = f"pgdb_role_{uuid.uuid4().hex[:12]}"
        roles.append(role)
        quoted = f'"{role}"'
        await conn.execute(f"CREATE ROLE {quoted} LOGIN; {grants.format(role=quoted)}")
        return url_for_role(postgres_url, role)

    try:
        yield make
    finally:
        for role in roles:
            await conn.execute(f'DROP OWNED BY "{role}"; DROP ROLE "{role}"')
        await conn.close()


@pytest.fixture
async def reader_url(make_role: MakeRole, pg_schema: str) -> str:
    """A DSN for a role that may only read the test schema: what the tool is meant to run as."""
    return await make_role(
        f'GRANT USAGE ON SCHEMA "{pg_schema}" TO {{role}}; '
        f'GRANT SELECT ON ALL TABLES IN SCHEMA "{pg_schema}" TO {{role}};'
    )


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    """A SQLite database file with the sample tables."""
    path = tmp_path / "sample.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(SQLITE_DDL)
    conn.close()
    return path
