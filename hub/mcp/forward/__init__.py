"""MCP sessions across replicas without sticky load balancing: a request is forwarded to the replica that holds its
session (`registry`: who is where, in Redis; `proxy`: the hop).

Why forwarding, not sessions kept in Redis: an MCP session is live state (the SDK's transport and its tasks, the
client's stream of server-to-client messages, an upstream call waiting for the client's sampling answer, the client's
own upstream sessions with their processes). None of it can be written to Redis and read back elsewhere; the
replica that holds it is the only one that can answer. So each session id names its replica, and whichever replica
the load balancer picks sends the request there, streaming the answer back (progress, logs and sampling requests
included). A session whose replica is gone answers 404 `Session not found`, on which the spec has the client start a
new session. Without Redis or without `general_settings.replica_url`, nothing changes: session ids are plain, and
an unknown one answers 404 here.

The workers of `toolhub serve --workers N` share one socket, and the kernel hands each connection to any of them, so
each worker is a replica of its own: it also listens on a port of its own (at `replica_url`'s address, or 127.0.0.1)
and advertises that port under its own id, in Redis when the server has Redis and `replica_url`, else in a
directory its supervisor keeps (`local`). A hop then reaches exactly the worker holding the session.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import anyio

from hub.mcp.forward.local import WorkerRegistry
from hub.mcp.forward.proxy import FORWARDED_HEADER, Forwarder, forward_client
from hub.mcp.forward.registry import (
    Registry,
    RegistryUnavailable,
    ReplicaRegistry,
    forward_secret,
    new_replica_id,
    owner_of,
    registry_client,
    session_prefix,
)

logger = logging.getLogger("toolhub.mcp")


@contextlib.asynccontextmanager
async def replica_forwarding(
    redis_url: str | None, replica_url: str | None, worker_registry: str | None = None, master_key: str | None = None
) -> AsyncIterator[Forwarder | None]:
    """This replica's forwarding while the hub runs: registered (and kept so), unregistered at stop. Registered in
    the workers' directory `worker_registry` when given (a worker of `toolhub serve --workers N` whose server has no
    Redis or no `replica_url`: `replica_url` is then the worker's own loopback port), else in Redis, signed with a
    key derived from `master_key` (without one, no forwarding through Redis). Yields None when none applies (each
    replica then needs sticky sessions, as before)."""
    if replica_url and worker_registry:
        if redis_url and not master_key:  # replicas, probably: the workers forward between themselves only
            logger.warning(
                "MCP sessions are forwarded between this server's workers only (no general_settings.master_key, "
                "which signs the Redis registry): /mcp needs affinity across replicas"
            )
        async with _forwarding(WorkerRegistry(worker_registry, new_replica_id(), replica_url)) as forwarder:
            yield forwarder
        return
    if not redis_url or not replica_url or not master_key:
        if redis_url:  # replicas, probably: say what they lack
            lacking = "general_settings.master_key, which signs" if replica_url else "general_settings.replica_url for"
            logger.warning("MCP sessions stay on this replica (no %s the Redis registry): /mcp needs affinity", lacking)
        yield None
        return
    client = registry_client(redis_url)
    try:
        registry = ReplicaRegistry(client, new_replica_id(), replica_url, forward_secret(master_key))
        async with _forwarding(registry) as forwarder:
            yield forwarder
    finally:
        with anyio.CancelScope(shield=True):
            await client.aclose()


@contextlib.asynccontextmanager
async def _forwarding(registry: Registry) -> AsyncIterator[Forwarder]:
    """A forwarder over `registry`, whose entry is kept while it runs and removed at the end."""
    forwarder = Forwarder(registry, forward_client())
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(registry.run, name="mcp-replica-registration")
            try:
                yield forwarder
            finally:
                tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await registry.unregister()
            await forwarder.client.aclose()


__all__ = [
    "FORWARDED_HEADER",
    "Forwarder",
    "Registry",
    "RegistryUnavailable",
    "ReplicaRegistry",
    "WorkerRegistry",
    "owner_of",
    "replica_forwarding",
    "session_prefix",
]
