"""The shipped setups give the model a demo database through a read-only role, never the gateway's own tables."""

from __future__ import annotations

import os
import shutil
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest
import yaml

from tests.support.peers import missing_peer
from tests.tools._postgres_db_client import call
from tests.tools.conftest import url_for_role
from tools.postgres_db.postgres import AsyncpgDatabase
from tools.postgres_db.server import build_server

ROOT = Path(__file__).resolve().parents[2]
INIT_SCRIPT = ROOT / "configs" / "postgres" / "init-demo.sh"


def load(path: str) -> Any:
    """Parse one of the shipped YAML files."""
    return yaml.safe_load((ROOT / path).read_text())


def test_the_example_config_serves_the_demo_not_the_hub_database() -> None:
    server = load("configs/config.example.yaml")["mcp_servers"]["postgres_db"]
    assert server["args"] == ["-m", "tools.postgres_db", "--demo"]
    assert "env" not in server


def test_compose_mounts_the_config_and_gives_the_tool_the_reader_on_the_demo_database() -> None:
    services = load("docker-compose.yml")["services"]
    dsn = urllib.parse.urlsplit(services["postgres_db"]["environment"]["POSTGRES_DB_DSN"])
    assert (dsn.username, dsn.hostname, dsn.path) == ("postgres_db_reader", "postgres", "/demo")
    assert services["postgres"]["volumes"][1:] == [
        "./configs/postgres/init-demo.sh:/docker-entrypoint-initdb.d/10-init-demo.sh:ro",
        "./tools/postgres_db/demo.sql:/demo/demo.sql:ro",
    ]
    hub = services["toolhub"]
    assert hub["volumes"] == [f"./configs/config.docker.yaml:{hub['environment']['TOOLHUB_CONFIG']}:ro"]
    assert hub["environment"]["TOOLHUB_PUBLIC_HOST"] == "${TOOLHUB_PUBLIC_HOST:-localhost}"
    general = load("configs/config.docker.yaml")["general_settings"]
    assert "os.environ/TOOLHUB_PUBLIC_HOST" in general["mcp_allowed_hosts"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY configs" not in dockerfile
    assert f"ENV TOOLHUB_CONFIG={hub['environment']['TOOLHUB_CONFIG']}\n" in dockerfile


@pytest.fixture
async def initialised(postgres_url: str) -> AsyncIterator[dict[str, str]]:
    """Run the compose init script against the test server with unique names; drop what it made afterwards."""
    if shutil.which("psql") is None:
        missing_peer("psql is not installed")
    suffix = uuid.uuid4().hex[:10]
    names = {"hub": f"pgdb_hub_{suffix}", "demo": f"pgdb_demo_{suffix}", "reader": f"pgdb_reader_{suffix}"}
    admin = await asyncpg.connect(postgres_url)
    await admin.execute(f'CREATE DATABASE "{names["hub"]}"')
    parts = urllib.parse.urlsplit(postgres_url)
    env = {
        **os.environ,
        "PGHOST": parts.hostname or "127.0.0.1",
        "PGPORT": str(parts.port or 5432),
        "POSTGRES_USER": parts.username or "postgres",
        "POSTGRES_DB": names["hub"],
        "POSTGRES_DB_DEMO_DB": names["demo"],
        "POSTGRES_DB_READER": names["reader"],
        "POSTGRES_DB_READER_PASSWORD": "reader",
        "POSTGRES_DB_DEMO_SQL": str(ROOT / "tools" / "postgres_db" / "demo.sql"),
    }
    try:
        with anyio.fail_after(60):
            await anyio.run_process(["sh", str(INIT_SCRIPT)], env=env, check=True)
        yield names
    finally:
        for database in (names["demo"], names["hub"]):
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.execute(f'DROP ROLE IF EXISTS "{names["reader"]}"')
        await admin.close()


@pytest.mark.anyio
async def test_the_compose_init_script_makes_a_reader_the_tool_accepts(
    postgres_url: str, initialised: dict[str, str]
) -> None:
    base = url_for_role(postgres_url, initialised["reader"])
    demo = urllib.parse.urlsplit(base)._replace(path=f"/{initialised['demo']}").geturl()
    server = build_server(AsyncpgDatabase(demo))
    counted = await call(server, "execute_query", sql="SELECT count(*) AS n FROM order_items")
    assert counted.structured_content == {"columns": ["n"], "rows": [[46]], "row_count": 1, "truncated": False}
    hub = urllib.parse.urlsplit(base)._replace(path=f"/{initialised['hub']}").geturl()
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await asyncpg.connect(hub)
