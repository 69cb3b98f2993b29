"""Metrics apply their pending records in small batches (issue 17: held records were RSS that grew until a scrape)."""

from __future__ import annotations

from hub.accounts.usage import UsageRecord
from hub.metrics import Metrics


def _record(n: int) -> UsageRecord:
    return UsageRecord(request_id=f"req-{n}", key_id="k", model_alias="m", upstream_model="m", provider="openai",
                       status_code=200, stream=False, latency_ms=1.0, created_at=1_767_225_600.0 + n)  # fmt: skip


def test_256_unscraped_records_are_applied_and_let_go() -> None:
    metrics = Metrics()
    for n in range(256):
        metrics.record(_record(n))
    labels = {"model": "m", "provider": "openai", "status": "200"}
    assert metrics.registry.get_sample_value("toolhub_requests_total", labels) == 256
