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
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import anyio

from hub.mcp.forward.proxy import FORWARDED_HEADER, Forwarder, forward_client
from hub.mcp.forward.registry import ReplicaRegistry, new_replica_id, owner_of, registry_client, session_prefix

logger = logging.getLogger("toolhub.mcp")


@contextlib.asynccontextmanager
async def replica_forwarding(redis_url: str | None, replica_url: str | None) -> AsyncIterator[Forwarder | None]:
    """This replica's forwarding while the hub runs: registered (and kept so) in Redis, unregistered at stop.
    Yields None when either setting is missing (each replica then needs sticky sessions, as before)."""
    if not redis_url or not replica_url:
        if redis_url:  # replicas, probably: say what they lack
            logger.info("MCP sessions stay on this replica (no general_settings.replica_url): /mcp needs affinity")
        yield None
        return
    client = registry_client(redis_url)
    registry = ReplicaRegistry(client, new_replica_id(), replica_url)
    forwarder = Forwarder(registry, forward_client())
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(registry.run, name="mcp-replica-heartbeat")
            try:
                yield forwarder
            finally:
                tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await registry.unregister()
            await forwarder.client.aclose()
            await client.aclose()


__all__ = [
    "FORWARDED_HEADER",
    "Forwarder",
    "ReplicaRegistry",
    "owner_of",
    "replica_forwarding",
    "session_prefix",
]
