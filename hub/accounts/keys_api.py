"""`/key/*`: virtual key management with LiteLLM's request and response shapes (master key only, but a key may
read its own `/key/info`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.accounts.admin import no_nul, query_int, query_text, store_errors
from hub.accounts.auth import Principal, constant_time_equal
from hub.accounts.keys import KeyAuthenticator, display_name, hash_key, new_key, token_hash
from hub.accounts.spend import budget_period, parse_duration, period_start, usd
from hub.errors import BadRequest, NotFound, PermissionDenied, json_response
from hub.gateway.requests import read_json_body
from hub.state import authenticate, hub_state
from hub.storage import KeyRow, Store, StoreConflict
from hub.storage.key_spend import spend_since_many

LITELLM_IGNORED = frozenset({"user_id", "team_id", "tags", "soft_budget", "max_parallel_requests", "key_type",
                             "send_invite_email", "organization_id", "aliases", "config", "permissions", "budget_id",
                             "allowed_routes", "guardrails", "model_max_budget", "model_rpm_limit", "model_tpm_limit",
                             "enforced_params", "allowed_cache_controls", "key_name"})  # fmt: skip
_MAX_BODY = 1024 * 1024
_MAX_INT = 2**63 - 1
"""Limits are BIGINT columns."""
Text = Annotated[str, AfterValidator(no_nul)]


class _ObjectPermission(BaseModel):
    """LiteLLM's `object_permission`: servers, and per-server tool lists."""

    model_config = ConfigDict(extra="ignore")
    mcp_servers: list[Text] | None = None
    mcp_tool_permissions: dict[Text, list[Text]] | None = None


class KeyFields(BaseModel):
    """What a key may do; LiteLLM's field names."""

    model_config = ConfigDict(extra="forbid")
    key_alias: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(no_nul)] | None = None
    models: list[Text] | None = None
    mcp_servers: list[Text] | None = None
    mcp_tools: list[Text] | None = None
    """Toolhub: tools as "server/tool" ("server/*" for a whole server)."""
    object_permission: _ObjectPermission | None = None
    max_budget: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    budget_duration: str | None = None
    rpm_limit: int | None = Field(default=None, ge=0, le=_MAX_INT)
    tpm_limit: int | None = Field(default=None, ge=0, le=_MAX_INT)
    duration: str | None = None
    """Expiry from now, e.g. "30d"; null or "permanent": never."""
    metadata: dict[str, Any] | None = None
    blocked: bool | None = None

    @field_validator("budget_duration")
    @classmethod
    def _budget_duration(cls, value: str | None) -> str | None:
        if value is not None and not parse_duration(value):
            raise ValueError("a budget period must be longer than 0s")
        return value

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None and value not in ("permanent", "-1"):
            parse_duration(value)
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        try:
            orjson.dumps(value)
        except orjson.JSONEncodeError as exc:  # nested deeper than the store's JSON encoder goes
            raise ValueError(f"cannot be stored: {exc}") from exc
        return value


class GenerateRequest(KeyFields):
    key: str | None = Field(default=None, min_length=8, max_length=256, pattern=r"^[\x21-\x7e]+$")
    """A key chosen by the caller (must start with sk-); generated when absent."""


class UpdateRequest(KeyFields):
    key: str


class KeyRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str


class DeleteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keys: list[str] | None = Field(default=None, max_length=1000)
    key_aliases: list[Text] | None = Field(default=None, max_length=1000)


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


def key_changes(fields: KeyFields, now: float) -> dict[str, Any]:
    """The KeyRow columns a request sets (only the fields it sent, so null clears a limit); `toolhub keys create`
    builds its row with them too, so the command and the API store the same key for the same settings."""
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
    if t is None:
        return None
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
    except (OverflowError, OSError, ValueError):  # a date too far out, stored before durations were bounded
        return "9999-12-31T23:59:59Z"


async def key_info(keys: KeyAuthenticator, row: KeyRow, *, spend: float | None = None) -> dict[str, Any]:
    """A key as the API shows it (LiteLLM's names), with its spend in the current budget period (`spend`, or read
    as `key_spends` reads it)."""
    period = budget_period(row.budget_duration)
    start = period_start(row.created_at, period, time.time())
    if spend is None:
        spend = shown_spend(keys, row.token_hash, start, await keys.store.spend_since(row.token_hash, start))
    return {
        "token": row.token_hash, "key_name": row.key_name, "key_alias": row.key_alias, "models": row.models or [],
        "mcp_servers": row.mcp_servers or [], "mcp_tools": row.mcp_tools or [], "spend": usd(spend),
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
    master = hub_state(request).config.master_key
    if master is not None and constant_time_equal(key, master):  # it would outlive a rotation as a virtual key
        raise BadRequest("This key cannot be used: choose another 'key'.", param="key", code="invalid_value")
    now = time.time()
    row = KeyRow(token_hash=hash_key(key), key_name=display_name(key), created_at=now, updated_at=now)
    for name, value in key_changes(req, now).items():
        setattr(row, name, value)
    row.blocked = bool(row.blocked)
    body = {"key": key, **await key_info(keys, row, spend=0.0)}  # built first: a failure here stores nothing
    try:
        await keys.store.insert_key(row)
    except StoreConflict as exc:
        raise BadRequest("A key with this key_alias (or this key) already exists.", param="key_alias",
                         code="key_exists") from exc  # fmt: skip
    return json_response(body)


async def info(request: Request) -> Response:
    principal: Principal = await authenticate(request)
    keys = _keys(request)
    key = query_text(request, "key")
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
    page = query_int(request, "page", 1, 1, 1_000_000)
    size = query_int(request, "size" if "size" in q else "page_size", 10, 1, 1000)
    alias = query_text(request, "key_alias")
    rows, total = await keys.store.list_keys(alias=alias, limit=size, offset=(page - 1) * size)
    full = q.get("return_full_object", "false").lower() == "true"
    listed: list[Any] = [r.token_hash for r in rows]
    if full:  # the page's spend in one query, not one per key (hub/storage/key_spend.py)
        spent = await key_spends(keys, rows, time.time())
        listed = [await key_info(keys, r, spend=spent[r.token_hash]) for r in rows]
    body = {"keys": listed, "total_count": total, "current_page": page, "total_pages": -(-total // size)}
    return json_response(body)


async def key_spends(keys: KeyAuthenticator, rows: Sequence[KeyRow], now: float) -> dict[str, float]:
    """Each key's spend in its current budget period, as `/key/info` shows it: the stored spend of the whole page in
    one query (`spend_since_many`), each raised to this process's in-memory account where that is higher."""
    since = {row.token_hash: period_start(row.created_at, budget_period(row.budget_duration), now) for row in rows}
    stored = await spend_since_many(keys.store, since)
    return {digest: shown_spend(keys, digest, start, stored.get(digest, 0.0)) for digest, start in since.items()}


def shown_spend(keys: KeyAuthenticator, token_hash: str, start: float, stored: float) -> float:
    """The spend every replica reports alike: the stored spend of the period from `start`, or this process's budget
    account when it is higher and counts the same period.

    The stored spend is shared, so replicas agree once their writers have flushed (about a second). The account is
    what this process enforces with: the stored spend when it was loaded (or caught up) plus what this process charged
    since, including records its writer has not stored yet. The higher of the two is low only while this process has
    unstored records and others stored spend since the account read the store: by the smaller of those, until this
    process's writer flushes. The account alone is stale: it never sees another replica's spend for a key without a
    budget, and a budgeted key's only when this process serves it. An account still in an earlier period (or another
    `budget_duration`) does not count the period shown.
    """
    account = keys.ledger.get(token_hash)
    if account is None or account.period_start != start:
        return stored
    return max(stored, account.spent)


async def update(request: Request) -> Response:
    keys = await _master(request)
    req: UpdateRequest = _parse(UpdateRequest, await read_json_body(request, _MAX_BODY))
    row = await _find(keys.store, req.key)
    try:
        updated = await keys.store.update_key(row.token_hash, key_changes(req, time.time()))
    except StoreConflict as exc:
        raise BadRequest("Another key has this key_alias.", param="key_alias", code="key_exists") from exc
    if updated is None:
        raise NotFound("No such key.", code="key_not_found", param="key")
    await keys.changed(row.token_hash)
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
        await keys.changed(digest, deleted=True)
    return json_response({"deleted_keys": deleted})


async def _set_blocked(request: Request, blocked: bool) -> Response:
    keys = await _master(request)
    req: KeyRef = _parse(KeyRef, await read_json_body(request, _MAX_BODY))
    row = await _find(keys.store, req.key)
    updated = await keys.store.update_key(row.token_hash, {"blocked": blocked})
    await keys.changed(row.token_hash)
    return json_response(await key_info(keys, updated or row))


async def block(request: Request) -> Response:
    return await _set_blocked(request, True)


async def unblock(request: Request) -> Response:
    return await _set_blocked(request, False)


ROUTES = [
    Route("/key/generate", store_errors(generate), methods=["POST"]),
    Route("/key/info", store_errors(info), methods=["GET"]),
    Route("/key/list", store_errors(list_keys), methods=["GET"]),
    Route("/key/update", store_errors(update), methods=["POST"]),
    Route("/key/delete", store_errors(delete), methods=["POST"]),
    Route("/key/block", store_errors(block), methods=["POST"]),
    Route("/key/unblock", store_errors(unblock), methods=["POST"]),
]
