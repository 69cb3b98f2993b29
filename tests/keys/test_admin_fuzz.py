"""A few hundred generated bodies and query strings on every admin endpoint, on SQLite and PostgreSQL: never a 5xx,
every refusal in OpenAI's error shape. Seeded, so a failure reproduces."""

from __future__ import annotations

import random
from typing import Any

import httpx2

KEY_FIELDS = ["key_alias", "models", "mcp_servers", "mcp_tools", "object_permission", "max_budget", "budget_duration",
              "rpm_limit", "tpm_limit", "duration", "metadata", "blocked", "user_id"]  # fmt: skip
FIELDS = {"/key/generate": [*KEY_FIELDS, "key"], "/key/update": KEY_FIELDS, "/key/delete": ["keys", "key_aliases"],
          "/key/block": ["key"], "/key/unblock": ["key"]}  # fmt: skip
QUERY = ["key", "page", "size", "page_size", "key_alias", "return_full_object", "api_key", "model", "start_date",
         "end_date", "group_by", "limit"]  # fmt: skip


def value(rng: random.Random, depth: int = 0) -> Any:
    """Something a careless or hostile client might send."""
    choices: list[Any] = [None, True, False, 0, -1, 2**63, 2**64, -(2**63) - 1, 10**30, 1.5, -0.0, 1e308, -1e308,
                          "", "\x00", "a\x00b", "sk-" + "x" * 20, "30d", "0s", "99999999999999y", "1mo", "-5d",
                          "9999-12-31", "10000-01-01", "nan", "inf", "é" * 50, "x" * 5000, "\ud7ff"]  # fmt: skip
    if depth < 3:
        choices += [[value(rng, depth + 1) for _ in range(rng.randint(0, 3))],
                    {rng.choice(KEY_FIELDS): value(rng, depth + 1) for _ in range(rng.randint(0, 3))}]  # fmt: skip
    return rng.choice(choices)


def text(rng: random.Random) -> str:
    return rng.choice(["", "1", "0", "-1", "99999999999999999999", "1e3", "abc", "\x00", "true", "9999-12-31",
                       "10000-01-01", "2026-02-30", "nan", "-inf", "1e400", "key", "model", "x" * 3000])  # fmt: skip


def assert_answered(response: httpx2.Response) -> None:
    assert response.status_code < 500, (response.request.method, response.request.url, response.text)
    if response.status_code >= 400:
        error = response.json()["error"]
        assert isinstance(error["message"], str) and error["type"], response.text


def test_generated_admin_requests_never_get_a_5xx(admin: httpx2.Client) -> None:
    rng = random.Random(20261205)
    key = admin.post("/key/generate", json={"key_alias": "fuzz-target"}).json()["key"]
    gets = ["/key/info", "/key/list", "/spend/logs", "/spend/daily", "/spend/tool_calls"]
    for _ in range(200):
        path = rng.choice(list(FIELDS))
        body: Any = {rng.choice(FIELDS[path]): value(rng) for _ in range(rng.randint(0, 3))}
        if path == "/key/update" and rng.random() < 0.8:
            body["key"] = key
        assert_answered(admin.post(path, json=body if rng.random() < 0.9 else value(rng)))
    for _ in range(150):
        params = {rng.choice(QUERY): text(rng) for _ in range(rng.randint(1, 4))}
        assert_answered(admin.get(rng.choice(gets), params=params))
    listed = admin.get("/key/list", params={"return_full_object": "true", "size": 1000})
    assert listed.status_code == 200, listed.text
