"""Helpers for tests that run the hub with MCP upstreams."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx2


def make_db(path: Path) -> None:
    """A small SQLite database for the postgres_db tool server: `users` and `orders`."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id), total REAL)")


def wait_for_tools(url: str, servers: set[str], key: str) -> None:
    """Wait (at most 30 s) until the hub at `url` lists tools of every server in `servers`."""
    deadline = time.monotonic() + 30
    listing: dict[str, object] = {}
    while time.monotonic() < deadline:
        listing = httpx2.get(f"{url}/mcp/tools/list", headers={"Authorization": f"Bearer {key}"}).json()
        if servers <= {tool["server"] for tool in listing["tools"]}:  # type: ignore[union-attr]
            return
        time.sleep(0.1)
    raise AssertionError(f"MCP upstreams {servers} did not come up: {listing}")
