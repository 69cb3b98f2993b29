"""A tool loop that falls back from one provider to another mid-loop: each provider's thinking state is dropped
or restored so that the other provider (whose fake enforces its real rules) accepts the conversation."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e import router_support as support
from tests.e2e.router_support import ASK, Upstreams, loop_gateway
from tests.fakes.faults import ANTHROPIC_OVERLOADED, Fault
from tests.support.hub import make_db

upstream_servers, up = support.upstream_servers, support.up
GEMINI_503 = Fault(503, {"error": {"code": 503, "message": "The model is overloaded. Please try again later.",
                                   "status": "UNAVAILABLE"}})  # fmt: skip


@pytest.mark.parametrize(
    ("primary", "primary_model", "primary_fault", "backup", "backup_model", "answer"),
    [
        ("anthropic", "claude-think", ANTHROPIC_OVERLOADED, "gemini", "gemini-3-loop", "Order A1 ships tomorrow."),
        ("gemini", "gemini-3-loop", GEMINI_503, "anthropic", "claude-think", "Paris is sunny at noon UTC."),
        ("anthropic", "claude-think", ANTHROPIC_OVERLOADED, "a", "text", "You said: "),
        ("gemini", "gemini-3-loop", GEMINI_503, "a", "text", "You said: "),
    ],
)
def test_a_loop_with_thinking_falls_back_across_providers_mid_loop(
    up: Upstreams, tmp_path: Path, primary: str, primary_model: str, primary_fault: Fault, backup: str,
    backup_model: str, answer: str,
) -> None:  # fmt: skip
    db = tmp_path / "shop.db"
    make_db(db)
    first, second = getattr(up, primary), getattr(up, backup)
    first.faults.queue = [None]  # round 1 answers (with thinking); every later request to it fails
    first.faults.always = primary_fault
    models = [
        {**first.deployment("db-agent", primary_model), "mcp_servers": ["postgres_db"]},
        {**second.deployment("backup", backup_model), "mcp_servers": ["postgres_db"]},
    ]
    with loop_gateway(db, models, fallbacks=[{"db-agent": ["backup"]}]) as client:
        completion = client.chat.completions.create(
            model="db-agent",
            messages=ASK,
            reasoning_effort="low",  # pyright: ignore[reportArgumentType]
        )
    assert answer in (completion.choices[0].message.content or "")
    assert first.faults.calls >= 2 and second.faults.calls >= 1  # round 1 on the primary, then the backup
