"""Real peers the tests need: Node MCP servers, the conformance suite, mcp-proxy, chromium, psql, PostgreSQL, Redis.

Locally a missing peer skips the tests that need it, saying how to get it. Where peers are required
(`TOOLHUB_REQUIRE_NODE=1`, set by `.ci/run`) it fails them instead, so CI cannot stay green with tests skipped.
`.ci/run` also loads `tests.support.strict_skips`, which fails any skip that does not come through here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn

import pytest

from tests.support.servers import ROOT

REQUIRE_ENV = "TOOLHUB_REQUIRE_NODE"


def peers_required(environ: Mapping[str, str] = os.environ) -> bool:
    """True where every peer must be present (CI)."""
    return environ.get(REQUIRE_ENV) == "1"


def missing_peer(message: str) -> NoReturn:
    """Skip the running test because a peer is missing; fail it instead when peers are required."""
    if peers_required():
        pytest.fail(f"{message} ({REQUIRE_ENV}=1: every test peer is required here)", pytrace=False)
    pytest.skip(message)


def require_files(*paths: Path, hint: str) -> None:
    """`missing_peer` unless every path exists; the message lists the missing ones (relative to the checkout)."""
    missing = [_shown(path) for path in paths if not path.exists()]
    if missing:
        missing_peer(f"{', '.join(missing)} missing: {hint}")


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
