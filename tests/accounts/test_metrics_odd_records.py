"""Metrics take any record: a negative count or cost (which no counter may add) is left out, never the whole batch."""

from __future__ import annotations

from hub.accounts.usage import UsageRecord
from hub.metrics import Metrics


def test_a_record_with_negative_counts_and_cost_neither_raises_nor_drops_its_batch() -> None:
    metrics = Metrics()
    odd = UsageRecord(request_id="odd", key_id="k", model_alias="m", upstream_model="m", provider="openai",
                      status_code=200, stream=False, latency_ms=1.0, prompt_tokens=-1_000_000, completion_tokens=7,
                      cost=-3000.0)  # fmt: skip
    good = UsageRecord(request_id="good", key_id="k", model_alias="m", upstream_model="m", provider="openai",
                       status_code=200, stream=False, latency_ms=1.0, prompt_tokens=12)  # fmt: skip
    metrics.record(odd)
    metrics.record(good)
    metrics.render()
    sample = metrics.registry.get_sample_value
    assert sample("toolhub_requests_total", {"model": "m", "provider": "openai", "status": "200"}) == 2
    assert sample("toolhub_tokens_total", {"model": "m", "kind": "prompt"}) == 12
    assert sample("toolhub_tokens_total", {"model": "m", "kind": "completion"}) == 7
