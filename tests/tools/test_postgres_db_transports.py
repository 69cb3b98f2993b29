"""End to end: `python -m tools.postgres_db` as a real subprocess, over stdio and over streamable HTTP on loopback."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from anyio.abc import ByteReceiveStream
from mcp import Client, StdioServerParameters

pytestmark = pytest.mark.anyio

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOL_NAMES = ["list_tables", "describe_table", "execute_query", "get_table_constraints", "get_table_stats"]


async def exercise(client: Client) -> None:
    """List the tools, run a query and check a write is refused."""
    assert [tool.name for tool in (await client.list_tools()).tools] == TOOL_NAMES
    counted = await client.call_tool("execute_query", {"sql": "SELECT count(*) AS n FROM orders"})
    assert counted.structured_content == {"columns": ["n"], "rows": [[5]], "row_count": 1, "truncated": False}
    described = await client.call_tool("describe_table", {"table": "customers"})
    assert described.structured_content is not None
    assert [column["name"] for column in described.structured_content["columns"]] == [
        "id",
        "email",
        "name",
        "created_at",
    ]
    refused = await client.call_tool("execute_query", {"sql": "DROP TABLE y"})
    assert refused.is_error


async def exercise_stdio(args: list[str], env: dict[str, str] | None = None) -> None:
    """Spawn the server over stdio and exercise it."""
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "tools.postgres_db", *args], env=env, cwd=str(REPO_ROOT)
    )
    with anyio.fail_after(30):
        async with Client(params, mode="legacy") as client:
            await exercise(client)


async def read_url(stream: ByteReceiveStream) -> str:
    """Read the child's stderr until it logs the URL it listens on."""
    output = b""
    async for chunk in stream:
        output += chunk
        if match := re.search(rb"listening on (http://\S+)", output):
            return match.group(1).decode()
    raise AssertionError(f"the server exited before listening:\n{output.decode(errors='replace')}")


async def exercise_http(args: list[str]) -> None:
    """Start the server with --transport http on an ephemeral loopback port and exercise it over streamable HTTP."""
    command = [sys.executable, "-m", "tools.postgres_db", *args, "--transport", "http", "--host", "127.0.0.1"]
    process = await anyio.open_process(
        [*command, "--port", "0"], cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
    )
    try:
        assert process.stderr is not None
        with anyio.fail_after(30):
            url = await read_url(process.stderr)
            assert re.fullmatch(r"http://127\.0\.0\.1:\d+/mcp", url)
            async with Client(url, mode="legacy") as client:
                await exercise(client)
    finally:
        process.terminate()
        with anyio.fail_after(10):
            await process.wait()
        await process.aclose()


async def test_stdio_subprocess_serves_sqlite(sqlite_file: Path) -> None:
    await exercise_stdio(["--dsn", f"sqlite:///{sqlite_file}"])


async def test_stdio_subprocess_reads_the_dsn_from_the_environment(reader_url: str, pg_schema: str) -> None:
    await exercise_stdio(["--schema", pg_schema], env={"POSTGRES_DB_DSN": reader_url})


async def test_the_server_refuses_to_start_as_a_superuser_and_prints_the_fix(postgres_url: str, pg_schema: str) -> None:
    command = [sys.executable, "-m", "tools.postgres_db", "--dsn", postgres_url, "--schema", pg_schema]
    with anyio.fail_after(30):
        process = await anyio.run_process(command, cwd=REPO_ROOT, check=False)
    stderr = process.stderr.decode()
    assert process.returncode == 1
    assert stderr.startswith("error: Refusing to run as PostgreSQL role 'postgres': it is a superuser.\n")
    assert f'GRANT SELECT ON ALL TABLES IN SCHEMA "{pg_schema}" TO postgres_db_reader;' in stderr
    assert "--allow-unsafe-role (POSTGRES_DB_ALLOW_UNSAFE_ROLE=1)" in stderr
    assert process.stdout == b""


async def test_allow_unsafe_role_from_the_environment_lets_it_start(postgres_url: str, pg_schema: str) -> None:
    await exercise_stdio(
        ["--schema", pg_schema], env={"POSTGRES_DB_DSN": postgres_url, "POSTGRES_DB_ALLOW_UNSAFE_ROLE": "1"}
    )


async def test_http_subprocess_serves_sqlite(sqlite_file: Path) -> None:
    await exercise_http(["--dsn", str(sqlite_file)])


async def test_http_subprocess_serves_postgres(reader_url: str, pg_schema: str) -> None:
    await exercise_http(["--dsn", reader_url, "--schema", pg_schema, "--statement-timeout", "5"])
