"""Logs: recent requests, filtered by key, model, status and time, paginated on the server; each with its tool calls."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from hub.accounts.spend_api import _log as api_log, parse_time  # pyright: ignore[reportPrivateUsage]
from hub.errors import BadRequest
from hub.state import hub_state
from hub.ui import queries
from hub.ui.api import call_api
from hub.ui.session import Session
from hub.ui.web import page, render

PAGE_SIZE = 50


@page
async def logs_page(request: Request, session: Session) -> Response:
    extras = hub_state(request).extras
    store = extras.get("store")
    aliases = await key_aliases(request, session)
    context: dict[str, Any] = {"aliases": aliases, "models": sorted(hub_state(request).config.models),
                               "q": request.query_params, "rows": [], "total": 0, "page_no": 1, "pages": 0}  # fmt: skip
    if store is None:
        return render(request, "logs.html", session, error="Spend logs need a database (database_url).", **context)
    try:
        filters, page_no = _filters(request, session)
    except BadRequest as exc:
        return render(request, "logs.html", session, 400, error=exc.message, **context)
    if extras.get("usage_writer") is not None:
        await extras["usage_writer"].flush()  # read your writes, as /spend/logs does
    rows, total = await queries.spend_logs(store, filters, PAGE_SIZE, (page_no - 1) * PAGE_SIZE)
    calls = await queries.tool_calls_of(store, [r["request_id"] for r in rows if r["tool_calls"]])
    context.update(rows=[_row(r, aliases, calls) for r in rows], total=total, page_no=page_no,
                   pages=-(-total // PAGE_SIZE))  # fmt: skip
    return render(request, "logs.html", session, **context)


def _filters(request: Request, session: Session) -> tuple[queries.LogFilter, int]:
    q = request.query_params
    status = q.get("status") or None
    if status not in (None, "success", "failure"):
        raise BadRequest("'status' must be success or failure.", param="status")
    key = q.get("key") or None
    raw_page = q.get("page") or "1"
    page_no = int(raw_page) if raw_page.isdigit() and 0 < int(raw_page) <= 1_000_000 else 1
    filters = queries.LogFilter(
        key_hash=key if session.principal.is_master else session.principal.key_id,
        model=q.get("model") or None,
        status=status,  # pyright: ignore[reportArgumentType]
        start=parse_time(q.get("start") or None, "start"),
        end=parse_time(q.get("end") or None, "end", end=True),
    )
    return filters, page_no


async def key_aliases(request: Request, session: Session) -> dict[str, str]:
    """{key hash: alias or display name} of the keys this session may see."""
    if not session.principal.is_master:
        own = session.principal.key_id or ""
        return {own: session.principal.alias or own[:12]} if own else {}
    listing = await call_api(request, session, "GET", "/key/list",
                             query={"return_full_object": "true", "size": 1000})  # fmt: skip
    keys = listing.body.get("keys", []) if listing.ok else []
    return {k["token"]: k["key_alias"] or k["key_name"] for k in keys}


def _row(row: dict[str, Any], aliases: dict[str, str], calls: list[dict[str, Any]]) -> dict[str, Any]:
    out = api_log(row)
    out["key_alias"] = aliases.get(row["key_hash"] or "", "master" if row["key_hash"] is None else "")
    out["calls"] = [c for c in calls if c["request_id"] == row["request_id"]]
    return out
