"""`kill -9` of a real `toolhub serve` mid-burst: every request that got a 200 has exactly one row after restart."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from tests.scale.support import burst, fake_upstream, postgres_schema, rows_per_request, serving, write_config

ANSWERS_BEFORE_KILL = 150
REQUESTS = 600


def test_kill_9_mid_burst_loses_and_doubles_no_answered_request(tmp_path: Path) -> None:
    spill = tmp_path / "usage.spill.jsonl"
    journal = tmp_path / "usage.spill.journal"
    with fake_upstream() as upstream, postgres_schema() as database_url:
        config = write_config(tmp_path / "config.yaml", upstream, database_url=database_url, spill=spill)
        with serving(config) as (url, proc):

            def kill(answers: int) -> None:
                if answers >= ANSWERS_BEFORE_KILL and proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)

            results = asyncio.run(burst(url, REQUESTS, 16, on_answer=kill))
            assert proc.wait(10) == -signal.SIGKILL
        answered = sorted(rid for rid, status in results.items() if status == 200)
        assert ANSWERS_BEFORE_KILL <= len(answered) < REQUESTS
        assert set(results.values()) <= {0, 200}
        assert list(journal.glob("*.lock"))  # the dead process's journal is still there
        with serving(config):  # the next start replays it before serving
            pass
        rows = rows_per_request(database_url)
    assert {rid: rows[rid] for rid in answered} == dict.fromkeys(answered, 1)
    assert set(rows.values()) == {1}  # an unanswered request may have a row (the kill came after it), never two
    assert list(journal.iterdir()) == []
