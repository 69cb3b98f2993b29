"""MCP server exposing a PostgreSQL (asyncpg) or SQLite (aiosqlite) database to LLMs; run `python -m tools.postgres_db`."""
