"""Ids a passthrough upstream made, scoped to the keys that made them (hub/api/responses/passthrough.py).

Such an upstream resolves `previous_response_id` and `item_reference` under the gateway's one API key. So before a
request is forwarded, every id in it is checked here: a stored response or item of the key's own goes as it is to the
upstream that made it, and as its items to any other; one Toolhub made, or saw and has since deleted or purged, or
another key's, gets a 404 from Toolhub; only ids Toolhub never saw reach the upstream unchanged. Without a database
Toolhub keeps nothing, so ids are forwarded unchecked: run passthrough deployments with a database when keys must
not reach each other's stored responses.

DELETE of a response an upstream made is forwarded to that upstream too (best effort: Toolhub's own row is gone
either way, and the id keeps its 404 here).
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from hub.accounts.auth import Principal
from hub.api.responses import objects, owners, stored
from hub.api.responses.objects import JSON
from hub.errors import NotFound, json_response
from hub.state import authenticate, hub_state
from hub.storage import Store, StoredResponse
from providers._wire import UpstreamIOError
from providers.base import Deployment, upstream_url

logger = logging.getLogger("toolhub.responses")
OWN_ID = re.compile(r"resp_[0-9a-f]{32}")
"""The ids Toolhub gives the responses it makes (objects.new_id): never an upstream's."""


def mark(deployment: Deployment) -> str:
    """What a stored response keeps (`stored.UPSTREAM`) to name the upstream that made it: its API base and a hash
    of the key, since two keys at one base (two projects) do not see each other's responses."""
    key = hashlib.sha256((deployment.api_key or "").encode()).hexdigest()[:16]
    return f"{deployment.api_base} {key}"


def made_by(response: JSON, deployment: Deployment) -> bool:
    """Whether the stored `response` was made by `deployment`'s upstream, which then still has it."""
    return response.get(stored.UPSTREAM) == mark(deployment)


def _gone(previous: str) -> NotFound:
    return NotFound(f"Previous response with id '{previous}' not found.", param="previous_response_id",
                    code="response_not_found")  # fmt: skip


async def previous(store: Store, principal: Principal, response_id: str) -> StoredResponse | None:
    """The key's stored response `response_id`; None for an id Toolhub never saw (the upstream's own to resolve).

    Raises:
        NotFound: another key's, one Toolhub made, or one deleted or purged since.
    """
    row = await store.get_response(response_id)
    if row is not None:
        if row.key_hash != principal.key_id:
            raise _gone(response_id)
        return row
    if OWN_ID.fullmatch(response_id) or await owners.find(store, response_id) is not None:
        raise _gone(response_id)
    return None


async def references(request: Request, store: Store, principal: Principal, deployment: Deployment, body: JSON) -> JSON:
    """`body` with each `item_reference` the upstream cannot resolve for this key replaced by the item itself.

    Raises:
        NotFound: an item of another key, of a deleted response, or one Toolhub made and no longer has.
    """
    items = body.get("input")
    if not isinstance(items, list) or not any(stored.is_reference(i) for i in items):  # pyright: ignore[reportUnknownVariableType]
        return body
    resolved: list[Any] = []
    for i, item in enumerate(items):  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
        if stored.is_reference(item):
            item = await _reference(request, store, principal, deployment, item, i)
        resolved.append(item)
    return {**body, "input": resolved}


async def _reference(
    request: Request, store: Store, principal: Principal, deployment: Deployment, item: JSON, i: int
) -> JSON:
    ident: str = item["id"]
    if objects.response_of(ident) is not None:  # Toolhub made it: the upstream never saw it
        return _replayed(await stored.referenced(request, principal, ident, i))
    owner = await owners.find(store, ident)
    if owner is None:
        return item  # never seen here: the upstream's own to resolve (or refuse)
    row = await store.get_response(owner.response_id) if owner.key_hash == principal.key_id else None
    found = next((x for x in row.response["output"] if x.get("id") == ident), None) if row is not None else None
    if row is None or found is None:
        raise NotFound(f"Item with id '{ident}' not found.", param=f"input[{i}].id", code="item_not_found")
    return item if made_by(row.response, deployment) else _replayed(found)


def _replayed(item: JSON) -> JSON:
    """An item as input to an upstream that did not make it: without the id it would look up."""
    return {k: v for k, v in item.items() if k not in ("id", "status")}


async def delete_response(request: Request) -> Response:
    """DELETE /v1/responses/{id}: the key's own row, and the upstream's copy of a response an upstream made."""
    principal = await authenticate(request)
    row = await stored.load(request, principal, request.path_params["response_id"])
    await stored.database(request).delete_response(row.id)
    if stored.UPSTREAM in row.response:
        await _delete_upstream(request, row)
    return json_response({"id": row.id, "object": "response", "deleted": True})


async def _delete_upstream(request: Request, row: StoredResponse) -> None:
    state = hub_state(request)
    routes = (r for rs in state.config.models.values() for r in rs)
    deployment = next((r.deployment for r in routes if made_by(row.response, r.deployment)), None)
    if deployment is None:
        return  # no longer configured: nothing to ask
    url = upstream_url(deployment.api_base, f"/responses/{row.id}")
    headers = {
        **deployment.headers,
        **({"Authorization": f"Bearer {deployment.api_key}"} if deployment.api_key else {}),
    }
    try:
        response = await state.pool.upstream.request("DELETE", url, headers, connect=deployment.connect_timeout,
                                                     total=deployment.timeout)  # fmt: skip
        try:
            await response.read()  # read whole, the connection serves the next call
        finally:
            response.close()
    except (UpstreamIOError, ValueError) as exc:  # ValueError: an api_base that is no http(s) URL
        logger.warning("upstream DELETE of %s failed: %s", row.id, exc)
        return
    if response.status >= 300 and response.status != 404:  # a redirect is not followed (providers._http.post)
        location = response.headers.get("location")
        logger.warning("upstream DELETE of %s answered %s%s", row.id, response.status,
                       f" (Location: {location})" if location else "")  # fmt: skip
