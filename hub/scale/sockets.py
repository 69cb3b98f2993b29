"""The sockets `toolhub serve` listens on when it does not leave binding to uvicorn: `--fd`, and `--workers N`.

A socket that cannot be had (the port in use, an address not this machine's or that does not resolve, an `--fd`
that is not an open listening socket) is a `ListenError`: `serve` says so in one line and exits 3, as uvicorn does
when its own bind fails, instead of a traceback and exit 1.
"""

from __future__ import annotations

import dataclasses
import socket

from hub.config import Config, ConfigError
from hub.scale.supervisor import UnspecifiedAddress, worker_listener


class ListenError(Exception):
    """`serve` cannot listen where it was told to; the message names the address (or `--fd`) and why."""


def listening_socket(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """The socket every worker of `--workers N` accepts from (IPv6 when `host` is an IPv6 address).

    Raises:
        ListenError: the address is in use, not this machine's, or does not resolve.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except (OSError, OverflowError) as exc:  # OverflowError: a port past 65535 (the CLI refuses those first)
        sock.close()
        shown = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
        raise ListenError(f"cannot listen on {shown}: {exc}") from exc
    return sock


def inherited_socket(fd: int) -> socket.socket:
    """The listening socket passed as `--fd`, no longer inheritable: a stdio MCP server started later would otherwise
    hold it, and if it outlived a killed hub the port would accept connections nobody answers.

    Raises:
        ListenError: `fd` is not open, not a socket, or not a listening stream socket.
    """
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise ListenError(f"cannot serve on --fd {fd}: {exc}") from exc
    if sock.type != socket.SOCK_STREAM or not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        sock.detach()  # the descriptor stays as it was given
        raise ListenError(f"cannot serve on --fd {fd}: not a listening stream socket (bind and listen it first)")
    sock.set_inheritable(False)
    return sock


def serve_sockets(
    config: Config, *, fd: int | None, host: str, port: int, registry: str | None
) -> tuple[list[socket.socket] | None, Config]:
    """What uvicorn serves (None: it binds `host`/`port` itself), and the config to serve it with: a worker of
    `--workers N` (`registry`: the workers' directory) also serves a socket of its own, which its config advertises
    to the others.

    Raises:
        ListenError: see `inherited_socket` and `listening_socket`.
        ConfigError: `replica_url`'s address is not this machine's.
    """
    sockets = None if fd is None else [inherited_socket(fd)]
    if registry is None:
        return sockets, config
    own, config = _own_listener(config, registry)
    return [*(sockets or [listening_socket(host, port)]), own], config


def _own_listener(config: Config, registry: str) -> tuple[socket.socket, Config]:
    """A worker's own socket (served with the shared one, closed with it) and the config that advertises it in place
    of `replica_url`: in Redis at `replica_url`'s address when the server has both (and a master key, which signs
    the registry), so other replicas and workers reach this worker itself; else on 127.0.0.1 in the workers'
    directory `registry`, for the other workers.

    Raises:
        ConfigError: `replica_url`'s address is not this machine's (the supervisor checks it first).
    """
    redis = bool(config.redis_url and config.replica_url and config.master_key)  # the Redis registry is signed
    own, url = own_worker_listener(config, config.replica_url if redis else None)
    return own, dataclasses.replace(config, worker_url=url, worker_registry=None if redis else registry)


def own_worker_listener(config: Config, replica_url: str | None) -> tuple[socket.socket, str]:
    """hub/scale/supervisor.py's `worker_listener`, its refusals as config errors.

    Raises:
        ConfigError: `replica_url`'s address is not this machine's, or is 0.0.0.0 / `::`.
    """
    try:
        return worker_listener(replica_url)
    except UnspecifiedAddress as exc:
        raise ConfigError(
            "general_settings.replica_url",
            f"with --workers, each worker advertises a port of its own at the address of {config.replica_url}, but "
            f"{exc} (every interface, no machine's): the other replicas would dial themselves; use this machine's "
            "(pod's, container's) own IP address",
        ) from exc
    except OSError as exc:
        raise ConfigError(
            "general_settings.replica_url",
            f"with --workers, each worker listens on a port of its own at the address of {config.replica_url}, "
            f"which is not this machine's ({exc}): use this machine's (pod's, container's) own IP address",
        ) from exc
