"""MCP server exposing a PostgreSQL (asyncpg) or SQLite (aiosqlite) database; run `python -m tools.postgres_db`."""
