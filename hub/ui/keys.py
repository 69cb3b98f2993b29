"""Keys: list, create (the secret shown once), edit, block/unblock and delete, all through `/key/*`."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from hub.accounts.keys import is_expired
from hub.accounts.keys_api import key_info, key_spends
from hub.errors import HubError, NotFound
from hub.state import hub_state
from hub.storage import StoreError
from hub.ui.api import ApiResult, call_api
from hub.ui.session import Session
from hub.ui.web import page, read_form, render, split_list

PAGE_SIZE = 50
_LISTS = ("models", "mcp_servers", "mcp_tools")
_VALUES = ("key_alias", "max_budget", "budget_duration", "rpm_limit", "tpm_limit", "duration")


@page
async def keys_page(request: Request, session: Session) -> Response:
    return await _render(request, session)


async def _render(request: Request, session: Session, status: int = 200, **context: Any) -> Response:
    if not session.principal.is_master:
        own = await call_api(request, session, "GET", "/key/info")
        return render(request, "keys_own.html", session, status, info=own.body.get("info") if own.ok else None,
                      error=context.get("error") or (None if own.ok else own.error))  # fmt: skip
    page_no = _page(request.query_params.get("page"))
    alias = request.query_params.get("alias") or None
    context.setdefault("editing", request.query_params.get("edit"))
    try:
        body = await _listing(request, page_no, alias)
    except (HubError, StoreError) as exc:
        context.setdefault("error", exc.message if isinstance(exc, HubError) else f"The database failed: {exc}")
        body = {"keys": [], "total_count": 0, "total_pages": 0}
    response = render(request, "keys.html", session, status, listing=body, page_no=page_no, alias=alias or "",
                      **context)  # fmt: skip
    if request.method == "POST":
        response.headers["hx-replace-url"] = "/ui/keys"  # reloading shows the list, never the secret again
    return response


async def _listing(request: Request, page_no: int, alias: str | None) -> dict[str, Any]:
    """`/key/list?return_full_object=true`'s answer, with the page's spend read in one query (`/key/list` reads it
    key by key: a page of 50 keys over a million logs took over a second).

    Raises:
        NotFound: no database, so no keys.
        StoreError: the database failed.
    """
    keys = hub_state(request).extras.get("keys")
    if keys is None:
        raise NotFound("Key management needs a database (general_settings.database_url).")
    rows, total = await keys.store.list_keys(alias=alias, limit=PAGE_SIZE, offset=(page_no - 1) * PAGE_SIZE)
    now = time.time()
    spent = await key_spends(keys, rows, now)
    listed = [{**await key_info(keys, row, spend=spent[row.token_hash]), "expired": is_expired(row.expires, now)}
              for row in rows]  # fmt: skip
    return {"keys": listed, "total_count": total, "current_page": page_no, "total_pages": -(-total // PAGE_SIZE)}


def _page(raw: str | None) -> int:
    return int(raw) if raw and raw.isdigit() and 0 < int(raw) < 1_000_000 else 1


def key_fields(form: dict[str, str], *, clearing: bool = False) -> dict[str, Any]:
    """The `/key/generate` or `/key/update` body a form describes; on update an emptied field clears the value."""
    body: dict[str, Any] = {}
    for name in _VALUES:
        if form.get(name):
            body[name] = form[name]
        elif clearing and f"has_{name}" in form:
            body[name] = None
    for name in _LISTS:
        if form.get(name) or (clearing and f"has_{name}" in form):
            body[name] = split_list(form.get(name))
    return body


@page
async def create_key(request: Request, session: Session) -> Response:
    result = await call_api(request, session, "POST", "/key/generate", body=key_fields(await read_form(request)))
    if not result.ok:
        return await _render(request, session, result.status, error=result.error)
    return await _render(request, session, created=result.body)


@page
async def update_key(request: Request, session: Session) -> Response:
    form = await read_form(request)
    body = {"key": form.get("key", ""), **key_fields(form, clearing=True)}
    result = await call_api(request, session, "POST", "/key/update", body=body)
    return await _after(request, session, result, editing=body["key"])


@page
async def key_action(request: Request, session: Session) -> Response:
    """Block, unblock or delete one key, named by its hash."""
    action = request.path_params["action"]
    if action not in ("block", "unblock", "delete"):
        return await _render(request, session, 404, error=f"No such action: {action}.")
    key = (await read_form(request)).get("key", "")
    if action == "delete":
        result = await call_api(request, session, "POST", "/key/delete", body={"keys": [key]})
    else:
        result = await call_api(request, session, "POST", f"/key/{action}", body={"key": key})
    return await _after(request, session, result)


async def _after(request: Request, session: Session, result: ApiResult, editing: str | None = None) -> Response:
    """Back to the list when the API agreed; otherwise the list with its error, and the form that failed still
    open (`editing`)."""
    if not result.ok:
        return await _render(request, session, result.status, error=result.error, editing=editing)
    return RedirectResponse("/ui/keys", status_code=303)
