"""Logs: recent requests, filtered by key, model, status and time, paginated on the server; each with its tool calls."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from hub.accounts.spend_api import _log as api_log, parse_time  # pyright: ignore[reportPrivateUsage]
from hub.errors import BadRequest
from hub.state import hub_state
from hub.storage import Store
from hub.ui import queries
from hub.ui.session import Session
from hub.ui.web import page, render

PAGE_SIZE = 50
ALIAS_LIMIT = 1000


@page
async def logs_page(request: Request, session: Session) -> Response:
    state = hub_state(request)
    extras = state.extras
    store = extras.get("store")
    models = sorted(alias for alias in state.config.models if session.principal.may_use_model(alias))
    context: dict[str, Any] = {"models": models, "q": request.query_params, "rows": [], "total": 0,
                               "cap": queries.COUNT_CAP}  # fmt: skip
    if store is None:
        return render(request, "logs.html", session, error="Spend logs need a database (database_url).", **context)
    aliases = context["aliases"] = await key_aliases(store, session)
    try:
        filters = _filters(request, session)
    except BadRequest as exc:
        return render(request, "logs.html", session, 400, error=exc.message, **context)
    if extras.get("usage_writer") is not None:
        await extras["usage_writer"].flush()  # read your writes, as /spend/logs does
    q = request.query_params
    before, after = queries.Cursor.parse(q.get("before")), queries.Cursor.parse(q.get("after"))
    rows, more = await queries.spend_logs(store, filters, PAGE_SIZE, before=before, after=after)
    calls = await queries.tool_calls_of(store, [r["request_id"] for r in rows if r["tool_calls"]])
    context.update(rows=[_row(r, aliases, calls) for r in rows], total=await queries.count_logs(store, filters),
                   older=_cursor(rows[-1]) if rows and (more or after) else None,
                   newer=_cursor(rows[0]) if rows and ((more and after) or before) else None)  # fmt: skip
    return render(request, "logs.html", session, **context)


def _cursor(row: dict[str, Any]) -> str:
    return str(queries.Cursor(row["created_at"], row["id"]))


def _filters(request: Request, session: Session) -> queries.LogFilter:
    q = request.query_params
    status = q.get("status") or None
    if status not in (None, "success", "failure"):
        raise BadRequest("'status' must be success or failure.", param="status")
    return queries.LogFilter(
        key_hash=(q.get("key") or None) if session.principal.is_master else session.principal.key_id,
        model=q.get("model") or None,
        status=status,  # pyright: ignore[reportArgumentType]
        start=parse_time(q.get("start") or None, "start"),
        end=parse_time(q.get("end") or None, "end", end=True),
    )


async def key_aliases(store: Store, session: Session) -> dict[str, str]:
    """{key hash: alias or display name} of the keys this session may see (read through the Store interface:
    `/key/list` with full objects also sums each key's spend, which the names do not need)."""
    if not session.principal.is_master:
        own = session.principal.key_id or ""
        return {own: session.principal.alias or own[:12]} if own else {}
    rows, _ = await store.list_keys(alias=None, limit=ALIAS_LIMIT, offset=0)
    return {row.token_hash: row.key_alias or row.key_name for row in rows}


def _row(row: dict[str, Any], aliases: dict[str, str], calls: list[dict[str, Any]]) -> dict[str, Any]:
    out = api_log(row)
    out["key_alias"] = aliases.get(row["key_hash"] or "", "master" if row["key_hash"] is None else "")
    out["calls"] = [c for c in calls if c["request_id"] == row["request_id"]]
    return out
