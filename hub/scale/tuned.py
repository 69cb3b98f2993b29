"""The garbage collector's settings for a serving process.

Measured with the full server answering non-streamed requests at 64 connections (bench/workers.py's setup, cyclic
GC time from `gc.callbacks`, 35 s of a 2-core machine, about 7,500 requests): with Python's defaults the collector
took 1.29 s of 4.09 s of CPU, 0.89 s of it in 11 full collections of about 80 ms each, which walked the ~120,000
objects that imports and startup leave (the MCP SDK's and the config's pydantic models above all). Moving those into
the permanent generation once the app has started (`gc.freeze`) made full collections cheap (0.07 s), and
collecting the youngest generation every 10,000 allocations instead of 700 let most request objects die by reference
count first: 0.16 s of GC and 3.15 s of CPU in all, about 0.15 ms less per request.
"""

from __future__ import annotations

import gc
import socket
from typing import cast

import uvicorn
from starlette.types import ASGIApp

from hub.scale.startup import OneLineStartupErrors

GEN0_THRESHOLD = 10_000
GEN1_THRESHOLD = 20


def tune_gc() -> None:
    """Freeze what is alive now (it lives as long as the process) and collect young objects less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, GEN1_THRESHOLD, gc.get_threshold()[2])


class TunedServer(uvicorn.Server):
    """uvicorn's server that tunes the collector once the app's lifespan has started (its objects are frozen too).

    Toolhub serves no WebSocket route, so `ws="auto"` becomes `"none"`: uvicorn then loads no WebSocket library
    (about 0.5 MB a worker; an upgrade request is answered as plain HTTP).

    The lifespan runs through `OneLineStartupErrors` (a database that refuses: one line, no tracebacks), requests
    do not: uvicorn's lifespan task takes `config.loaded_app` as it starts, its connections when they are made.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        if config.ws == "auto":
            config.ws = "none"
        super().__init__(config)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        app = self.config.loaded_app
        self.config.loaded_app = OneLineStartupErrors(cast(ASGIApp, app))  # uvicorn's ASGI types, not Starlette's
        try:
            await super().startup(sockets=sockets)  # the lifespan first (sys.exit(3) when it fails), then the sockets
        finally:
            self.config.loaded_app = app  # a connection made meanwhile goes through the wrapper, which passes it on
        if self.started:
            tune_gc()
