"""`toolhub keys create|list|info|block|unblock|revoke`: manage virtual keys directly in the configured database.

A running gateway sees a new key at once, and a revoked or blocked key within its key cache time (5 s), or at once
when the config has a `redis_url` (the command tells the gateways through Redis pub/sub).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import orjson
from pydantic import ValidationError

from hub.accounts.key_events import publish
from hub.accounts.keys import display_name, hash_key, is_expired, new_key, token_hash
from hub.accounts.keys_api import KeyFields, key_changes
from hub.accounts.ratelimit import redis_client
from hub.accounts.spend import budget_period, period_start, usd
from hub.config import config_path, load_config
from hub.storage import KeyRow, Store, StoreConflict, StoreError, check_database_url, open_store

CHANGES = frozenset({"revoke", "block", "unblock"})


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `toolhub keys ...`."""
    parser = sub.add_parser("keys", help="create, list and revoke virtual keys in the configured database")
    parser.add_argument("--config", "-c", help="YAML config (default: $TOOLHUB_CONFIG or configs/config.example.yaml)")
    actions = parser.add_subparsers(dest="keys_command", required=True)
    p = actions.add_parser("create", help="create a key and print it (shown only once)")
    p.add_argument("--alias")
    p.add_argument("--models", help="comma-separated model aliases (default: all)")
    p.add_argument("--mcp-servers", help="comma-separated MCP servers (default: all)")
    p.add_argument("--mcp-tools", help="comma-separated server/tool names (default: all tools of allowed servers)")
    p.add_argument("--max-budget", type=float)
    p.add_argument("--budget-duration", help="e.g. 30d")
    p.add_argument("--rpm", type=int)
    p.add_argument("--tpm", type=int)
    p.add_argument("--duration", help="expiry from now, e.g. 30d")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = actions.add_parser("list", help="list keys (never the keys themselves)")
    p.add_argument("--json", action="store_true", help="print JSON")
    for name, text in (("info", "show one key"), ("revoke", "delete a key"), ("block", "block a key"),
                       ("unblock", "unblock a key")):  # fmt: skip
        p = actions.add_parser(name, help=text)
        p.add_argument("key", help="the key, its hash, or its alias")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    config = load_config(config_path(args.config))
    check_database_url(config.database_url)  # as `serve` refuses it, before a SQLite file named after the URL is made
    commands: dict[str, Callable[[Store, argparse.Namespace], Awaitable[int]]] = {
        "create": _create, "list": _list, "info": _info, "revoke": _revoke, "block": _block, "unblock": _unblock,
    }  # fmt: skip

    async def run() -> int:
        store = open_store(config.database_url)
        try:
            await store.connect()
            await store.migrate()
            status = await commands[args.keys_command](store, args)
            if status == 0 and args.keys_command in CHANGES and config.redis_url:
                await _tell_gateways(config.redis_url)
            return status
        except StoreError as exc:
            sys.stderr.write(f"toolhub keys: database error: {exc}\n")
            return 1
        finally:
            await store.aclose()

    return anyio.run(run)


async def _tell_gateways(redis_url: str) -> None:
    """Running gateways sharing this Redis re-read their keys at once (`hub.accounts.key_events`)."""
    client = redis_client(redis_url)
    try:
        await publish(client, "*")
    finally:
        await client.aclose()


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _show(row: KeyRow, spend: float | None = None) -> dict[str, Any]:
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return {"token": row.token_hash, "key_name": row.key_name, "key_alias": row.key_alias, "models": row.models,
            "mcp_servers": row.mcp_servers, "mcp_tools": row.mcp_tools, "max_budget": row.max_budget,
            "budget_duration": row.budget_duration, "rpm_limit": row.rpm_limit, "tpm_limit": row.tpm_limit,
            "expires": time.strftime(fmt, time.gmtime(row.expires)) if row.expires is not None else None,
            "blocked": row.blocked, "spend": None if spend is None else usd(spend)}  # fmt: skip


def _print(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


_FLAGS = {"key_alias": "--alias", "models": "--models", "mcp_servers": "--mcp-servers", "mcp_tools": "--mcp-tools",
          "max_budget": "--max-budget", "budget_duration": "--budget-duration", "rpm_limit": "--rpm",
          "tpm_limit": "--tpm", "duration": "--duration"}  # fmt: skip
"""`toolhub keys create`'s flag for each field of the admin API's `KeyFields`."""


def key_fields(args: argparse.Namespace) -> KeyFields:
    """The new key's settings, checked by the model `POST /key/generate` checks them with, so that the command line
    cannot store what the API refuses (a negative or NaN budget, a negative rate limit, a budget period of 0s).

    Raises:
        ValueError: the first value refused, named by its flag, with the API's message.
    """
    given = {"key_alias": args.alias, "models": _csv(args.models), "mcp_servers": _csv(args.mcp_servers),
             "mcp_tools": _csv(args.mcp_tools), "max_budget": args.max_budget,
             "budget_duration": args.budget_duration, "rpm_limit": args.rpm, "tpm_limit": args.tpm,
             "duration": args.duration}  # fmt: skip
    try:
        return KeyFields.model_validate({name: value for name, value in given.items() if value is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        flag = _FLAGS.get(str(first["loc"][0]) if first["loc"] else "", "")
        message = str(first.get("ctx", {}).get("error") or first["msg"])
        raise ValueError(f"{flag}: {message}" if flag else message) from exc


async def _create(store: Store, args: argparse.Namespace) -> int:
    try:
        fields = key_fields(args)
    except ValueError as exc:
        sys.stderr.write(f"toolhub keys: {exc}\n")
        return 2
    key, now = new_key(), time.time()
    row = KeyRow(
        token_hash=hash_key(key), key_name=display_name(key), created_at=now, updated_at=now, **key_changes(fields, now)
    )
    try:
        await store.insert_key(row)
    except StoreConflict:
        sys.stderr.write(f"toolhub keys: a key with alias {args.alias!r} already exists\n")
        return 1
    if args.json:
        _print({"key": key, **_show(row, 0.0)})
    else:
        sys.stdout.write(f"{key}\n")
        sys.stderr.write("This key is shown only once; store it now.\n")
    return 0


async def _list(store: Store, args: argparse.Namespace) -> int:
    rows, _ = await store.list_keys(alias=None, limit=100_000, offset=0)
    if args.json:
        _print([_show(r) for r in rows])
        return 0
    sys.stdout.write(f"{'ALIAS':<24} {'KEY':<12} {'MODELS':<30} {'BUDGET':>10} {'RPM':>6} {'STATE':<8} HASH\n")
    now = time.time()
    for r in rows:
        state = "blocked" if r.blocked else "expired" if is_expired(r.expires, now) else "active"
        models = ",".join(r.models or []) or "*"
        budget = "-" if r.max_budget is None else f"{r.max_budget:g}"
        rpm = "-" if r.rpm_limit is None else str(r.rpm_limit)
        sys.stdout.write(f"{r.key_alias or '-':<24} {r.key_name:<12} {models:<30} {budget:>10} {rpm:>6} {state:<8} "
                         f"{r.token_hash}\n")  # fmt: skip
    return 0


async def _find(store: Store, ref: str) -> KeyRow | None:
    row = await store.get_key(token_hash(ref))
    if row is None:
        row = await store.find_key_by_alias(ref)
    if row is None:
        sys.stderr.write(f"toolhub keys: no key {ref!r}\n")
    return row


async def _info(store: Store, args: argparse.Namespace) -> int:
    row = await _find(store, args.key)
    if row is None:
        return 1
    period = budget_period(row.budget_duration)
    _print(_show(row, await store.spend_since(row.token_hash, period_start(row.created_at, period, time.time()))))
    return 0


async def _revoke(store: Store, args: argparse.Namespace) -> int:
    row = await _find(store, args.key)
    if row is None:
        return 1
    await store.delete_keys([row.token_hash])
    sys.stdout.write(f"revoked {row.key_alias or row.key_name} ({row.token_hash})\n")
    return 0


async def _set_blocked(store: Store, args: argparse.Namespace, blocked: bool) -> int:
    row = await _find(store, args.key)
    if row is None:
        return 1
    await store.update_key(row.token_hash, {"blocked": blocked})
    sys.stdout.write(f"{'blocked' if blocked else 'unblocked'} {row.key_alias or row.key_name}\n")
    return 0


async def _block(store: Store, args: argparse.Namespace) -> int:
    return await _set_blocked(store, args, True)


async def _unblock(store: Store, args: argparse.Namespace) -> int:
    return await _set_blocked(store, args, False)
