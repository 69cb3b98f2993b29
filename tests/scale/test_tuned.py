"""The serving process freezes what startup left alive and collects young objects less often (hub/scale/tuned.py)."""

from __future__ import annotations

import subprocess
import sys

from tests.support.servers import ROOT

_SCRIPT = """
import asyncio, gc, json, socket
import uvicorn
from starlette.applications import Starlette
from hub.scale.tuned import GEN0_THRESHOLD, TunedServer

sock = socket.socket()
sock.bind(("127.0.0.1", 0))
before = (gc.get_freeze_count(), gc.get_threshold()[0])
server = TunedServer(uvicorn.Config(Starlette(), log_level="warning", lifespan="on"))
async def main():
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    for _ in range(1000):
        if server.started:
            break
        await asyncio.sleep(0.01)
    after = (gc.get_freeze_count(), gc.get_threshold()[0])
    server.should_exit = True
    await serving
    print(json.dumps({"before": before, "after": after, "gen0": GEN0_THRESHOLD}))
asyncio.run(main())
"""


def test_a_started_server_has_frozen_its_startup_objects_and_raised_the_young_threshold() -> None:
    done = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=ROOT, capture_output=True, timeout=120, check=True)
    import json

    result = json.loads(done.stdout)
    assert result["before"] == [0, 700]
    frozen, threshold = result["after"]
    assert frozen > 10_000 and threshold == result["gen0"]
