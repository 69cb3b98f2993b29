"""Stored responses: `store: true` keeps an answer for `previous_response_id`, GET, DELETE and `input_items`.

Rows live in the gateway's database (`state.extras["store"]`, table `toolhub_responses`) and belong to the key that
made them: another key gets the same 404 as for an id that never existed.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from hub.accounts.auth import Principal
from hub.api.responses import objects
from hub.api.responses.mcp import execution_error
from hub.api.responses.objects import JSON
from hub.errors import BadRequest, NotFound, ServiceUnavailable, json_response
from hub.state import authenticate, hub_state
from hub.storage import Store, StoredResponse

UPSTREAM = "_toolhub_upstream"
"""Key of a stored response that an upstream made itself (hub/api/responses/passthrough.py): the API base it came
from. It never leaves the gateway (`public`)."""
DEFAULT_LIMIT, MAX_LIMIT = 20, 100
"""Input items per page of `input_items`, as OpenAI pages them."""


def database(request: Request) -> Store:
    """The gateway's store.

    Raises:
        ServiceUnavailable: the app runs without a database.
    """
    store = hub_state(request).extras.get("store")
    if store is None:
        raise ServiceUnavailable("Stored responses need a database; this gateway runs without one.")
    return store


async def load(request: Request, principal: Principal, response_id: str, param: str | None = None) -> StoredResponse:
    """The stored response `response_id` of `principal`.

    Raises:
        NotFound: no such response for this key (whoever else may own it).
    """
    row = await database(request).get_response(response_id)
    if row is None or row.key_hash != principal.key_id:
        what = "Previous response" if param else "Response"
        raise NotFound(f"{what} with id '{response_id}' not found.", param=param, code="response_not_found")
    return row


async def with_references(request: Request, principal: Principal, body: JSON) -> JSON:
    """`body` with each `item_reference` input item replaced by the stored output item it names (the key's own).

    Raises:
        BadRequest: a reference without a string id (the chat translation would skip it without a word).
        NotFound: no such item in this key's stored responses.
    """
    items = body.get("input")
    if not isinstance(items, list):
        return body
    for i, item in enumerate(items):  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
        if isinstance(item, dict) and item.get("type") == "item_reference" and not is_reference(item):  # pyright: ignore[reportUnknownMemberType]
            raise BadRequest(f"input[{i}].id must be a string: the id of a stored output item.", param=f"input[{i}].id",
                             code="invalid_type")  # fmt: skip
    if not any(is_reference(i) for i in items):  # pyright: ignore[reportUnknownVariableType]
        return body
    resolved: list[Any] = []
    for i, item in enumerate(items):  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
        resolved.append(await referenced(request, principal, item["id"], i) if is_reference(item) else item)
    return {**body, "input": resolved}


def is_reference(item: Any) -> bool:
    """Whether `item` is an `item_reference` with a usable id (a non-empty string)."""
    return isinstance(item, dict) and item.get("type") == "item_reference" and bool(_string(item.get("id")))  # pyright: ignore[reportUnknownMemberType]


def _string(value: Any) -> str:
    return value if isinstance(value, str) else ""


async def referenced(request: Request, principal: Principal, item: str, i: int) -> JSON:
    """The key's stored output item `item` (made by Toolhub), for `input[i]`.

    Raises:
        NotFound: no such item in this key's stored responses, or no database.
    """
    store = hub_state(request).extras.get("store")
    if store is None:
        raise NotFound(f"Item with id '{item}' not found: this gateway runs without a database and keeps no responses; "
                       "send the items themselves (clients do with store: false).", param=f"input[{i}].id",
                       code="item_not_found")  # fmt: skip
    owner = objects.response_of(item)
    row = await store.get_response(owner) if owner is not None else None
    output: list[JSON] = row.response["output"] if row is not None and row.key_hash == principal.key_id else []
    found = next((x for x in output if x.get("id") == item), None)
    if found is None:
        raise NotFound(f"Item with id '{item}' not found.", param=f"input[{i}].id", code="item_not_found")
    return found


def with_ids(items: list[Any]) -> list[Any]:
    """Input items as `input_items` lists them: each with an id (messages get `msg_...`)."""
    out: list[Any] = []
    for item in items:
        item = dict(item)
        item.setdefault("type", "message")
        item.setdefault("id", objects.new_id("msg" if item["type"] == "message" else "item"))
        out.append(item)
    return out


def input_items(value: Any) -> list[Any]:
    """The request's `input` as a list of items."""
    if isinstance(value, str):
        return with_ids([{"type": "message", "role": "user", "content": [{"type": "input_text", "text": value}]}])
    return with_ids(value or [])


def assistant_message(response: JSON) -> JSON | None:
    """The response's output as one assistant chat message, to continue the conversation from."""
    text = "".join(p.get("text") or "" for i in response["output"] if i["type"] == "message" for p in i["content"])
    calls = [{"id": i["call_id"], "type": "function", "function": {"name": i["name"], "arguments": i["arguments"]}}
             for i in response["output"] if i["type"] == "function_call"]  # fmt: skip
    if not text and not calls:
        return None
    message: JSON = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return message


async def save(
    request: Request, principal: Principal, response: JSON, items: list[Any], history: list[Any], turn: JSON | None
) -> None:
    """Keep `response` with the items and the chat conversation (`history`, without its answer) that led to it;
    `turn` is the answer as a chat message when the output no longer shows it (approval requests)."""
    store = hub_state(request).extras.get("store")
    if store is None or response.get("store") is False:
        return
    answer = turn or assistant_message(response)
    messages = [*history, answer] if answer else history
    row = StoredResponse(response["id"], principal.key_id, time.time(), response, items, messages)
    await store.save_response(row)


async def get_response(request: Request) -> Response:
    principal = await authenticate(request)
    row = await load(request, principal, request.path_params["response_id"])
    response = public(row.response)
    return json_response({**response, "output": [listed(item) for item in response.get("output") or ()]})


def public(response: JSON) -> JSON:
    """The stored response as clients see it (without the gateway's own marks)."""
    return {k: v for k, v in response.items() if k != UPSTREAM} if UPSTREAM in response else response


async def list_input_items(request: Request) -> Response:
    """GET /v1/responses/{id}/input_items, paged as OpenAI pages it: `limit` (1 to 100, default 20), `order`
    (`desc`, the default, or `asc`) and `after` (an item id: the items after it in that order)."""
    principal = await authenticate(request)
    limit, order = _limit(request.query_params.get("limit")), _order(request.query_params.get("order"))
    row = await load(request, principal, request.path_params["response_id"])
    items = row.input_items if order == "asc" else row.input_items[::-1]
    start = _after(items, request.query_params.get("after"))
    page = [listed(item) for item in items[start : start + limit]]
    first, last = (page[0].get("id"), page[-1].get("id")) if page else (None, None)
    more = start + limit < len(items)
    return json_response({"object": "list", "data": page, "first_id": first, "last_id": last, "has_more": more})


def listed(item: Any) -> Any:
    """An item as OpenAI lists it, whichever version stored it. Rows keep messages as the client sent them, and a
    message's string `content` makes the openai SDK build an object whose `content` is no list of parts: it gets
    one `input_text` part (`output_text` for the assistant) and a `status`. An `mcp_call` stored with a string
    `error` (older versions) gets the error object."""
    kind = item.get("type") if isinstance(item, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    if kind == "mcp_call" and isinstance(error := item.get("error"), str):  # pyright: ignore[reportUnknownMemberType, reportOptionalMemberAccess]
        return {**item, "error": execution_error(error)}
    if kind != "message":
        return item
    content: Any = item.get("content")  # pyright: ignore[reportUnknownMemberType]
    if isinstance(content, str):
        assistant = item.get("role") == "assistant"  # pyright: ignore[reportUnknownMemberType]
        content = [objects.output_text(content) if assistant else {"type": "input_text", "text": content}]
    return {**item, "content": content, "status": item.get("status") or "completed"}  # pyright: ignore[reportUnknownMemberType]


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 3 and 1 <= int(raw) <= MAX_LIMIT):
        raise BadRequest(f"'limit' must be an integer from 1 to {MAX_LIMIT}.", param="limit", code="invalid_value")
    return int(raw)


def _order(raw: str | None) -> str:
    if raw not in (None, "asc", "desc"):
        raise BadRequest("'order' must be 'asc' or 'desc'.", param="order", code="invalid_value")
    return raw or "desc"


def _after(items: list[Any], after: str | None) -> int:
    """Where the page starts: after the item `after` names, or at the first item."""
    if after is None:
        return 0
    found = next((i for i, item in enumerate(items) if item.get("id") == after), None)
    if found is None:
        raise BadRequest(f"'after' names no input item of this response: '{after}'.", param="after",
                         code="invalid_value")  # fmt: skip
    return found + 1
