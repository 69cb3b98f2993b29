"""A spend-log row's `day` column is the UTC date its request finished, however the date is computed."""

from __future__ import annotations

import time

from hub.accounts.usage import UsageRecord
from hub.storage import StoredUsage, _sql as sql

DAY = 86_400


def test_the_day_column_is_the_utc_date_of_created_at_on_both_sides_of_midnight() -> None:
    midnight = 20_427 * DAY  # 2025-12-05T00:00:00Z
    for created_at in (0.0, 59.5, midnight - 0.000_001, midnight, midnight + 0.5, midnight + DAY - 1, 1.7e9 + 0.25):
        record = UsageRecord("r", None, "m", "m", "openai", 200, False, 1.0, created_at=created_at)
        row = sql.usage_params(StoredUsage("id", record))
        assert row[sql.SPEND_COLUMNS.index("day")] == time.strftime("%Y-%m-%d", time.gmtime(created_at))
