"""The `toolhub` command line."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import math
import os
import sys
import types
from collections.abc import Callable, Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hub.config import ENV_PREFIX, Config, ConfigError, config_path, load_config
from hub.config.effect import no_effect
from hub.mcp.redact import UrlFilter, hide_urls
from hub.ops.config_check import did_you_mean, key_problems
from hub.ops.logs import use_json_logs
from hub.router.config import describe
from hub.scale.sockets import ListenError, inherited_socket, listening_socket, own_worker_listener, serve_sockets
from hub.scale.supervisor import STARTUP_FAILURE
from hub.storage import check_database_url
from providers._wire.pool import shown_url

logger = logging.getLogger("toolhub")


def _load(path: str | None, *, serving: bool = True, warn_ignored: bool = True) -> Config:
    config = load_config(config_path(path), serving=serving)
    check_database_url(config.database_url)  # a typo of the scheme would be opened as a SQLite file named after it
    if config.json_logs:  # before the first warning, so that every line is JSON
        use_json_logs()
    for key in config.ignored if warn_ignored else ():  # check-config lists them itself, with a likely typo's fix
        if (reason := no_effect(key)) is not None:  # implemented, but disabled by a setting beside it
            logger.warning("config key %s has no effect here: %s", key, reason)
            continue
        guess = did_you_mean(key)
        logger.warning("config key %s is not implemented by Toolhub and is ignored%s", key,
                       f" (did you mean {guess!r}? `toolhub check-config` refuses it)" if guess else "")  # fmt: skip
    return config


def serve(args: argparse.Namespace) -> int:
    """Run the server until SIGINT/SIGTERM; in-flight requests get `shutdown_grace_seconds` to finish."""
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    keep_out_mcp_server_framework()  # before hub.server imports mcp
    pure_python_frozenlist()  # before the first image fetch imports aiohttp (upstream calls use providers/_wire)
    from hub.gateway.transport import TurnWritesHttpTools
    from hub.scale.tuned import TunedServer
    from hub.server import build_app

    config = _load(args.config)
    workers = args.workers or config.num_workers
    if workers > 1:
        return _serve_workers(args, config, workers)
    if config.master_key is None:
        logger.warning("no general_settings.master_key: the gateway is open to anyone who can reach it")
    sockets, config = serve_sockets(config, fd=args.fd, host=args.host, port=args.port, registry=args.worker_registry)
    where = f"inherited socket {args.fd}" if args.fd is not None else f"http://{args.host}:{args.port}"
    logger.info("serving %d model aliases from %s on %s", len(config.models), config.source, where)
    server = TunedServer(  # uvicorn.Server, with the garbage collector tuned once started (hub/scale/tuned.py)
        uvicorn.Config(
            build_app(config),
            host=args.host,
            port=args.port,
            loop="uvloop",
            http=TurnWritesHttpTools,  # httptools, a response's head and body in one write (hub/gateway/transport.py)
            log_level=args.log_level,
            log_config=None if config.json_logs else LOGGING_CONFIG,  # None: uvicorn logs via root
            access_log=args.access_log,
            timeout_graceful_shutdown=math.ceil(config.shutdown_grace_seconds),  # 0: close at once, never unbounded
            proxy_headers=True,
            forwarded_allow_ips=args.forwarded_allow_ips,
            server_header=False,
        )
    )
    # An inherited socket (`--fd`, bound by whoever started us) leaves no window for another process to take the port.
    server.run(sockets=sockets)
    return 0 if server.started else 3  # uvicorn's STARTUP_FAILURE


MCP_SERVER_FRAMEWORK = "mcp.server.mcpserver"


def keep_out_mcp_server_framework() -> None:
    """Keep the MCP SDK's high-level server framework (`MCPServer`) out of a serving process (issue 17: RSS).

    The hub serves MCP with the SDK's low-level `Server`, but `import mcp` loads the framework anyway (mcp/__init__
    -> mcp.client.client -> mcp.client._memory -> mcp.server -> .mcpserver), and with it cryptography, httpx2's
    client and resource models: 8.4 MB of a worker's 80 (mcp 2.3, bench/rss.py). Those SDK modules take only the
    name `MCPServer` from it, for `isinstance` checks of `Client(server)`, which the hub never calls. So before the
    first `import mcp`, `mcp.server.mcpserver` is a placeholder module: its `MCPServer` cannot be built or
    subclassed, and any other name raises ImportError. Should a later SDK need more of it, `serve` fails at start,
    naming this function; tests/scale/test_rss_imports.py checks that a worker serves MCP without the framework.
    A process that has already imported `mcp` (a test calling `main`) is left alone: the placeholder would shadow a
    framework it may import later.
    """
    if "mcp" not in sys.modules and MCP_SERVER_FRAMEWORK not in sys.modules:
        sys.modules[MCP_SERVER_FRAMEWORK] = _AbsentFramework(MCP_SERVER_FRAMEWORK)


def pure_python_frozenlist() -> None:
    """Import `frozenlist` (aiohttp's, through aiosignal) as its pure-Python build, with its documented switch
    FROZENLIST_NO_EXTENSIONS set for the import only: its C++ extension loads libstdc++, 1.0 MB of a worker's RSS
    (issue 17), for lists aiohttp freezes once per session (its signal handlers), never per request. Called before
    any thread starts, so that setting the variable races with no `getenv`."""
    if "frozenlist" in sys.modules:
        return
    previous = os.environ.get(_NO_EXTENSIONS)
    os.environ[_NO_EXTENSIONS] = "1"
    try:
        import frozenlist  # noqa: F401  # pyright: ignore[reportUnusedImport]
    finally:
        if previous is None:
            del os.environ[_NO_EXTENSIONS]
        else:
            os.environ[_NO_EXTENSIONS] = previous


_NO_EXTENSIONS = "FROZENLIST_NO_EXTENSIONS"
_KEPT_OUT = "not loaded in `toolhub serve` (hub.cli.keep_out_mcp_server_framework)"


class _AbsentFramework(types.ModuleType):
    """`mcp.server.mcpserver` in a serving process: the name `MCPServer`, and ImportError for anything else."""

    def __init__(self, name: str) -> None:
        super().__init__(name, "placeholder: toolhub serve does not load the MCP SDK's server framework")
        self.__spec__ = ModuleSpec(name, None, origin=f"placeholder set by {__name__}.keep_out_mcp_server_framework")
        self.__file__ = f"<placeholder set by {__name__}.keep_out_mcp_server_framework>"
        self.MCPServer = _no_mcp_server(name)

    def __getattr__(self, name: str) -> object:
        """AttributeError, so `hasattr`, `getattr(..., default)` and pickle's module scan work as for any module;
        `from mcp.server.mcpserver import X` turns it into an ImportError naming `__file__`, hence this function."""
        raise AttributeError(f"{self.__name__}.{name}: {_KEPT_OUT}")


def _no_mcp_server(module: str) -> type:
    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"{module}.MCPServer: {_KEPT_OUT}; the hub serves MCP with the SDK's low-level Server")

    return type("MCPServer", (), {"__new__": refuse, "__init_subclass__": classmethod(refuse), "__module__": module})


def _serve_workers(args: argparse.Namespace, config: Config, workers: int) -> int:
    """`--workers N` (`general_settings.num_workers`): a supervisor and N `serve` processes on one socket."""
    from hub.scale.supervisor import run_workers, worker_command

    _check_replica_url(config)
    sock = inherited_socket(args.fd) if args.fd is not None else listening_socket(args.host, args.port)
    argv = [*worker_command(), "serve", "--workers", "1", "--log-level", args.log_level,
            "--forwarded-allow-ips", args.forwarded_allow_ips]  # fmt: skip
    argv += ["--config", args.config] if args.config else []
    argv += ["--access-log"] if args.access_log else []
    where = f"inherited socket {args.fd}" if args.fd is not None else f"http://{args.host}:{args.port}"
    logger.info("starting %d workers on %s", workers, where)
    return run_workers(sock, argv, workers, config.shutdown_grace_seconds)


def _check_replica_url(config: Config) -> None:
    """Before any worker starts: say how MCP sessions reach their worker, and refuse a `replica_url` whose address
    the workers could not listen on (each would fail alone, restarted forever).

    Raises:
        ConfigError: `replica_url`'s address is not this machine's, or is 0.0.0.0 / `::`.
    """
    if not (config.redis_url and config.replica_url and config.master_key):
        reach = "other replicas" if config.redis_url else "replicas on other machines"
        logger.info("MCP sessions: each worker forwards to the worker holding the session (on 127.0.0.1); %s "
                    "cannot reach them without general_settings.replica_url, redis_url and master_key (which signs "
                    "the registry)", reach)  # fmt: skip
        return
    probe, url = own_worker_listener(config, config.replica_url)
    probe.close()
    address = urlsplit(url).hostname or ""
    if ipaddress.ip_address(address).is_loopback:
        logger.warning("general_settings.replica_url %s is a loopback address (%s): the workers advertise it in "
                       "Redis, where replicas on other machines would dial themselves; use this machine's own IP "
                       "address unless every replica runs here", config.replica_url, address)  # fmt: skip


def check_config(args: argparse.Namespace) -> int:
    """Validate a config file and print what would be served; needs no secrets, but says what `serve` would refuse."""
    config = _load(args.file, serving=False, warn_ignored=False)
    problems = [] if args.allow_unknown else key_problems(config.ignored)
    for problem in problems:
        sys.stderr.write(f"toolhub: config error at {problem.path}: {problem.message}\n")
    if problems:
        sys.stderr.write("toolhub: fix these keys, or pass --allow-unknown for a file shared with LiteLLM\n")
        return 2
    refusal = _serve_refusal(args.file)
    out = sys.stdout
    out.write(f"config {config.source}: OK\n")
    out.write(f"master key: {_master_key_line(config, refusal)}\n")
    if refusal is not None:
        out.write(f"serve: would refuse to start: {refusal}\n")
    out.write(f"database: {'database_url set' if config.database_url else 'embedded SQLite'}\n")
    out.write("models:\n")
    for alias, routes in config.models.items():
        for route in routes:
            d = route.deployment
            warn = f"  [unavailable: {', '.join(route.missing_env)} not set]" if route.missing_env else ""
            out.write(f"  {alias} -> {d.provider}/{d.model} at {_shown(d.api_base)}{warn}\n")
    for line in describe(config.router, config.models):  # hub/router: strategy, retries, fallback chains
        out.write(line + "\n")
    out.write("mcp servers:\n")
    written = _written_servers(config.source)
    for name, server in config.mcp_servers.items():
        spec = server.spec
        command = [spec.command or "", *spec.args]
        where = hide_urls(spec.url) if spec.url else " ".join(_as_written(command, written.get(name)))
        warn = f"  [unavailable: {', '.join(server.missing_env)} not set]" if server.missing_env else ""
        out.write(f"  {name} ({spec.transport or ('stdio' if spec.command else 'sse')}): {where}{warn}\n")
    for key in config.ignored:
        if (reason := no_effect(key)) is not None:  # implemented, but disabled by a setting beside it
            out.write(f"ignored: {key} (no effect here: {reason})\n")
            continue
        guess = did_you_mean(key)
        out.write(f"ignored: {key}" + (f" (did you mean {guess!r}?)\n" if guess else "\n"))
    return 0


def _shown(url: str | None) -> str | None:
    """A configured URL without its credentials or query, as responses and logs show it."""
    return shown_url(url) if url else url


def _written_servers(source: str) -> dict[str, Any]:
    """`mcp_servers` as the file writes it: an `os.environ/NAME` there, not its value."""
    import yaml

    try:
        raw = yaml.safe_load(Path(source).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    servers = raw.get("mcp_servers") if isinstance(raw, dict) else None
    return servers if isinstance(servers, dict) else {}  # pyright: ignore[reportUnknownVariableType]


def _as_written(parts: list[str], written: Any) -> list[str]:
    """A stdio server's command and args, each taken from `os.environ/NAME` shown so (a secret in `args` stays
    unprinted); every arg masked when the file no longer matches the loaded config."""
    entry: dict[str, Any] = written if isinstance(written, dict) else {}  # pyright: ignore[reportUnknownVariableType]
    args = entry.get("args") or []
    raw: list[Any] = [entry.get("command"), *args] if isinstance(args, list) else []  # pyright: ignore[reportUnknownArgumentType]
    if len(raw) != len(parts):
        return [parts[0], *("***" for _ in parts[1:])]
    return [w if isinstance(w, str) and w.startswith(ENV_PREFIX) else p for w, p in zip(raw, parts, strict=True)]


def _serve_refusal(path: str | None) -> ConfigError | None:
    """Why `toolhub serve` would refuse this config (an unset master key, database or Redis variable), if it would."""
    try:
        load_config(config_path(path))
    except ConfigError as exc:
        return exc
    return None


def _master_key_line(config: Config, refusal: ConfigError | None) -> str:
    if config.master_key:
        return "set"
    if refusal is not None and refusal.path == "general_settings.master_key":
        return "its environment variable is not set"
    return "NONE (open gateway)"


def _positive(text: str) -> int:
    return _bounded(text, 1, None)


def _port(text: str) -> int:
    """0..65535: uvicorn's loop takes a larger port modulo 65536 and listens there while logging the one given."""
    return _bounded(text, 0, 65535)


def _descriptor(text: str) -> int:
    return _bounded(text, 0, None)


def _bounded(text: str, low: int, high: int | None) -> int:
    value = int(text)
    if value < low or (high is not None and value > high):
        raise argparse.ArgumentTypeError(f"must be {low}..{high}, not {value}" if high is not None else
                                         f"must be at least {low}, not {value}")  # fmt: skip
    return value


Command = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="toolhub", description="MCP tool hub and OpenAI-compatible LLM gateway.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the gateway and MCP hub")
    p.add_argument("--config", "-c", help="YAML config (default: $TOOLHUB_CONFIG or configs/config.example.yaml)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_port, default=4000, help="0..65535 (0: a free port)")
    inherited = "serve on this inherited, bound and listening socket instead of host:port"
    p.add_argument("--fd", type=_descriptor, default=None, help=inherited)
    workers = "worker processes on the one port, kept by a supervisor (default: general_settings.num_workers or 1)"
    p.add_argument("--workers", "--num_workers", "--num-workers", type=_positive, default=None, help=workers)
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--access-log", action="store_true", help="log every request (costs CPU on the hot path)")
    p.add_argument("--forwarded-allow-ips", default="127.0.0.1", help="proxies trusted for X-Forwarded-* headers")
    p.add_argument("--worker-registry", default=None, help=argparse.SUPPRESS)  # set by the supervisor for its workers
    p.set_defaults(func=serve)

    p = sub.add_parser("check-config", help="validate a config file and print what would be served")
    p.add_argument("file", nargs="?", help="YAML config (default: $TOOLHUB_CONFIG or configs/config.example.yaml)")
    lenient = "list unknown keys and likely typos as ignored instead of refusing them (a file shared with LiteLLM)"
    p.add_argument("--allow-unknown", action="store_true", help=lenient)
    p.set_defaults(func=check_config)

    for register in _extra_commands():
        register(sub)
    return parser


def _extra_commands() -> list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]]:
    """Subcommands owned by other modules (MCP hub, keys), registered without importing them eagerly."""
    from hub import commands

    return commands.REGISTRARS


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    quiet_http_log()
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        sys.stderr.write(f"toolhub: config error at {exc}\n" if exc.path else f"toolhub: {exc}\n")
        return 2
    except ListenError as exc:  # as uvicorn's own bind failures: one line, its start-failure exit code
        logger.error("%s", exc)
        return STARTUP_FAILURE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the top-level handler: a client that launched us (stdio) only sees "connection closed"
        logger.exception("toolhub %s failed", args.command)
        cause = _root_cause(exc)
        sys.stderr.write(f"toolhub: {args.command} failed: {type(cause).__name__}: {cause}\n")
        return 1


def quiet_http_log() -> None:
    """httpx2 logs every request to an MCP upstream at INFO, URL and all: keep those lines out (`toolhub stdio
    --http-log-level` brings them back), and show any URL it logs without credentials or query."""
    http = logging.getLogger("httpx2")
    http.setLevel(logging.WARNING)
    if not any(isinstance(f, UrlFilter) for f in http.filters):  # `main` may run more than once in a process
        http.addFilter(UrlFilter())


def _root_cause(exc: Exception) -> Exception:
    """The one error inside task-group wrappers (anyio wraps a failing task in an ExceptionGroup)."""
    while isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


if __name__ == "__main__":
    sys.exit(main())
