"""Cut long values inside PostgreSQL, so a 78 MB value never crosses the wire: the query is wrapped per column."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tools.postgres_db._limits import cut_text
from tools.postgres_db.databases import JSONValue

MAX_WRAPPED_COLUMNS = 500
"""Three output columns per column must stay under PostgreSQL's 1,664 target entries; wider results are not wrapped."""


def bounded_select(sql: str, columns: int, max_bytes: int) -> str | None:
    """Wrap a query so every column comes back as (value if short, else NULL; prefix if long; full byte size if long).

    The inner `OFFSET 0` keeps PostgreSQL from inlining the query, so each value is computed once.
    Returns None when the result is too wide to wrap.
    """
    if not 0 < columns <= MAX_WRAPPED_COLUMNS:
        return None
    names = [f"c{index}" for index in range(columns)]
    outputs: list[str] = []
    for name in names:
        size = f"octet_length(q.{name}::text)"
        outputs += [
            f"CASE WHEN {size} <= {max_bytes} THEN q.{name} END",
            f"CASE WHEN {size} > {max_bytes} THEN left(q.{name}::text, {max_bytes}) END",
            f"CASE WHEN {size} > {max_bytes} THEN {size} END",
        ]
    return f"SELECT {', '.join(outputs)}\nFROM (SELECT * FROM (\n{sql}\n) AS q0 OFFSET 0) AS q({', '.join(names)})"


def unwrap_row(
    record: Sequence[Any], max_bytes: int, convert: Callable[[object], JSONValue]
) -> tuple[list[JSONValue], list[int]]:
    """Turn one wrapped record back into the row's values; return them and the positions PostgreSQL cut."""
    values: list[JSONValue] = []
    cut: list[int] = []
    for index in range(0, len(record), 3):
        value, prefix, size = record[index], record[index + 1], record[index + 2]
        if prefix is None:
            values.append(convert(value))
        else:
            cut.append(len(values))
            values.append(cut_text(prefix, size, max_bytes))
    return values, cut
