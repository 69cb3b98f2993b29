"""`/key/*`: virtual key management with LiteLLM's request and response shapes (master key only, but a key may
read its own `/key/info`)."""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.accounts.auth import Principal
from hub.accounts.keys import KeyAuthenticator, display_name, hash_key, new_key, token_hash
from hub.accounts.spend import parse_duration, period_start
from hub.errors import BadRequest, NotFound, PermissionDenied, json_response
from hub.gateway.requests import read_json_body
from hub.state import authenticate, hub_state
from hub.storage import KeyRow, Store, StoreConflict

LITELLM_IGNORED = frozenset({"user_id", "team_id", "tags", "soft_budget", "max_parallel_requests", "key_type",
                             "send_invite_email", "organization_id", "aliases", "config", "permissions", "budget_id",
                             "allowed_routes", "guardrails", "model_max_budget", "model_rpm_limit", "model_tpm_limit",
                             "enforced_params", "allowed_cache_controls", "key_name"})  # fmt: skip
_MAX_BODY = 1024 * 1024


class _ObjectPermission(BaseModel):
    """LiteLLM's `object_permission`: servers, and per-server tool lists."""

    model_config = ConfigDict(extra="ignore")
    mcp_servers: list[str] | None = None
    mcp_tool_permissions: dict[str, list[str]] | None = None


class KeyFields(BaseModel):
    """What a key may do; LiteLLM's field names."""

    model_config = ConfigDict(extra="forbid")
    key_alias: str | None = Field(default=None, min_length=1, max_length=200)
    models: list[str] | None = None
    mcp_servers: list[str] | None = None
    mcp_tools: list[str] | None = None
    """Toolhub: tools as "server/tool" ("server/*" for a whole server)."""
    object_permission: _ObjectPermission | None = None
    max_budget: float | None = Field(default=None, ge=0)
    budget_duration: str | None = None
    rpm_limit: int | None = Field(default=None, ge=0)
    tpm_limit: int | None = Field(default=None, ge=0)
    duration: str | None = None
    """Expiry from now, e.g. "30d"; null or "permanent": never."""
    metadata: dict[str, Any] | None = None
    blocked: bool | None = None

    @field_validator("budget_duration")
    @classmethod
    def _budget_duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None and value not in ("permanent", "-1"):
            parse_duration(value)
        return value


class GenerateRequest(KeyFields):
    key: str | None = Field(default=None, min_length=8)
    """A key chosen by the caller (must start with sk-); generated when absent."""


class UpdateRequest(KeyFields):
    key: str


class KeyRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str


class DeleteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keys: list[str] | None = None
    key_aliases: list[str] | None = None


def _parse(model: type[Any], body: Any) -> Any:
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.", code="invalid_request")
    body = {k: v for k, v in body.items() if k not in LITELLM_IGNORED}  # pyright: ignore[reportUnknownVariableType]
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        message = str(first.get("ctx", {}).get("error") or first["msg"])
        if first["type"] == "extra_forbidden":
            message = f"Unrecognized request argument supplied: {param}"
        raise BadRequest(f"Invalid '{param}': {message}" if param else message, param=param,
                         code="invalid_value") from exc  # fmt: skip


def _changes(fields: KeyFields, now: float) -> dict[str, Any]:
    """The KeyRow columns a request sets (only the fields it sent, so null clears a limit)."""
    sent = fields.model_fields_set
    changes: dict[str, Any] = {}
    for name in ("key_alias", "models", "mcp_servers", "mcp_tools", "max_budget", "budget_duration", "rpm_limit",
                 "tpm_limit", "blocked"):  # fmt: skip
        if name in sent:
            changes[name] = getattr(fields, name)
    if "metadata" in sent:
        changes["metadata"] = fields.metadata or {}
    if "duration" in sent:
        d = fields.duration
        changes["expires"] = None if d is None or d in ("permanent", "-1") else now + parse_duration(d)
    permission = fields.object_permission
    if permission is not None:
        if permission.mcp_servers is not None:
            changes["mcp_servers"] = permission.mcp_servers
        if permission.mcp_tool_permissions is not None:
            tools = [f"{server}/{tool}" for server, names in permission.mcp_tool_permissions.items() for tool in names]
            changes["mcp_tools"] = sorted({*(changes.get("mcp_tools") or []), *tools})
    return changes


def _iso(t: float | None) -> str | None:
    return None if t is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


async def key_info(keys: KeyAuthenticator, row: KeyRow) -> dict[str, Any]:
    """A key as the API shows it (LiteLLM's names), with its spend in the current budget period."""
    account = keys.ledger.get(row.token_hash)
    period = parse_duration(row.budget_duration) if row.budget_duration else None
    start = period_start(row.created_at, period, time.time())
    spend = account.spent if account is not None else await keys.store.spend_since(row.token_hash, start)
    return {
        "token": row.token_hash, "key_name": row.key_name, "key_alias": row.key_alias, "models": row.models or [],
        "mcp_servers": row.mcp_servers or [], "mcp_tools": row.mcp_tools or [], "spend": spend,
        "max_budget": row.max_budget, "budget_duration": row.budget_duration,
        "budget_reset_at": _iso(start + period) if period else None, "rpm_limit": row.rpm_limit,
        "tpm_limit": row.tpm_limit, "expires": _iso(row.expires), "metadata": row.metadata, "blocked": row.blocked,
        "created_at": _iso(row.created_at), "updated_at": _iso(row.updated_at),
    }  # fmt: skip


async def _master(request: Request) -> KeyAuthenticator:
    principal = await authenticate(request)
    if not principal.is_master:
        raise PermissionDenied("Only the master key may manage keys.", code="master_key_required")
    return _keys(request)


def _keys(request: Request) -> KeyAuthenticator:
    keys = hub_state(request).extras.get("keys")
    if keys is None:
        raise NotFound("Key management needs a database (general_settings.database_url).", code="no_database")
    return keys


async def _find(store: Store, key: str) -> KeyRow:
    row = await store.get_key(token_hash(key))
    if row is None:
        raise NotFound("No such key.", code="key_not_found", param="key")
    return row


async def generate(request: Request) -> Response:
    keys = await _master(request)
    req: GenerateRequest = _parse(GenerateRequest, await read_json_body(request, _MAX_BODY))
    key = req.key or new_key()
    if not key.startswith("sk-"):
        raise BadRequest("A custom 'key' must start with 'sk-'.", param="key", code="invalid_value")
    now = time.time()
    row = KeyRow(token_hash=hash_key(key), key_name=display_name(key), created_at=now, updated_at=now)
    for name, value in _changes(req, now).items():
        setattr(row, name, value)
    row.blocked = bool(row.blocked)
    try:
        await keys.store.insert_key(row)
    except StoreConflict as exc:
        raise BadRequest("A key with this key_alias (or this key) already exists.", param="key_alias",
                         code="key_exists") from exc  # fmt: skip
    return json_response({"key": key, **await key_info(keys, row)})


async def info(request: Request) -> Response:
    principal: Principal = await authenticate(request)
    keys = _keys(request)
    key = request.query_params.get("key")
    if key is None:
        if principal.key_id is None:
            raise BadRequest("Pass ?key=<key or its hash>.", param="key", code="missing_required_parameter")
        key = principal.key_id
    row = await _find(keys.store, key)
    if not principal.is_master and row.token_hash != principal.key_id:
        raise PermissionDenied("A key may only read its own info.", code="master_key_required")
    return json_response({"key": key, "info": await key_info(keys, row)})


async def list_keys(request: Request) -> Response:
    keys = await _master(request)
    q = request.query_params
    try:
        page, size = int(q.get("page", "1")), int(q.get("size", q.get("page_size", "10")))
    except ValueError as exc:
        raise BadRequest("'page' and 'size' must be integers.", param="page", code="invalid_value") from exc
    if page < 1 or not 1 <= size <= 1000:
        raise BadRequest("'page' must be >= 1 and 'size' within 1..1000.", param="size", code="invalid_value")
    rows, total = await keys.store.list_keys(alias=q.get("key_alias"), limit=size, offset=(page - 1) * size)
    full = q.get("return_full_object", "false").lower() == "true"
    listed = [await key_info(keys, r) for r in rows] if full else [r.token_hash for r in rows]
    body = {"keys": listed, "total_count": total, "current_page": page, "total_pages": -(-total // size)}
    return json_response(body)


async def update(request: Request) -> Response:
    keys = await _master(request)
    req: UpdateRequest = _parse(UpdateRequest, await read_json_body(request, _MAX_BODY))
    row = await _find(keys.store, req.key)
    try:
        updated = await keys.store.update_key(row.token_hash, _changes(req, time.time()))
    except StoreConflict as exc:
        raise BadRequest("Another key has this key_alias.", param="key_alias", code="key_exists") from exc
    if updated is None:
        raise NotFound("No such key.", code="key_not_found", param="key")
    keys.invalidate(row.token_hash)
    return json_response({"key": req.key, **await key_info(keys, updated)})


async def delete(request: Request) -> Response:
    keys = await _master(request)
    req: DeleteRequest = _parse(DeleteRequest, await read_json_body(request, _MAX_BODY))
    hashes = [token_hash(k) for k in req.keys or []]
    for alias in req.key_aliases or []:
        row = await keys.store.find_key_by_alias(alias)
        if row is not None:
            hashes.append(row.token_hash)
    if not hashes and not req.key_aliases:
        raise BadRequest("Pass 'keys' or 'key_aliases'.", param="keys", code="missing_required_parameter")
    deleted = await keys.store.delete_keys(hashes)
    if not deleted:
        raise NotFound("None of these keys exist.", code="key_not_found", param="keys")
    for digest in deleted:
        keys.invalidate(digest)
        keys.ledger.forget(digest)
    return json_response({"deleted_keys": deleted})


async def _set_blocked(request: Request, blocked: bool) -> Response:
    keys = await _master(request)
    req: KeyRef = _parse(KeyRef, await read_json_body(request, _MAX_BODY))
    row = await _find(keys.store, req.key)
    updated = await keys.store.update_key(row.token_hash, {"blocked": blocked})
    keys.invalidate(row.token_hash)
    return json_response(await key_info(keys, updated or row))


async def block(request: Request) -> Response:
    return await _set_blocked(request, True)


async def unblock(request: Request) -> Response:
    return await _set_blocked(request, False)


ROUTES = [
    Route("/key/generate", generate, methods=["POST"]),
    Route("/key/info", info, methods=["GET"]),
    Route("/key/list", list_keys, methods=["GET"]),
    Route("/key/update", update, methods=["POST"]),
    Route("/key/delete", delete, methods=["POST"]),
    Route("/key/block", block, methods=["POST"]),
    Route("/key/unblock", unblock, methods=["POST"]),
]
