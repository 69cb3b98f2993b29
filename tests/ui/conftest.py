"""A real hub on loopback (fake OpenAI upstream, the postgres_db MCP server on SQLite, a SQLite store) driven by
Debian's chromium through Playwright. Pages may only reach 127.0.0.1; console errors fail the test."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import pytest

from hub.config import parse_config
from hub.server import build_app
from tests.fakes.openai_upstream import API_KEY, FakeOpenAI
from tests.storage.conftest import create_schema, drop_schema
from tests.support.hub import make_db, wait_for_tools
from tests.support.peers import missing_peer
from tests.support.servers import ROOT, refused_port, serve_app

MASTER_KEY = "sk-toolhub-ui-master"
CHROMIUM = os.environ.get("TOOLHUB_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"


def _missing_browser() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is not installed (scripts/setup installs it with the dev extras)"
    if not shutil.which(CHROMIUM):
        return f"no chromium at {CHROMIUM} (scripts/setup installs Debian's chromium as root)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module: Playwright's sync API keeps an event loop running in this thread until it
    stops, which anyio tests of later modules could not share."""
    missing = _missing_browser()
    if missing:
        missing_peer(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield chromium
        chromium.close()


@contextlib.contextmanager
def database_url(tmp: Path, backend: str) -> Iterator[str]:
    """A SQLite file, or a fresh schema in the test PostgreSQL (asyncpg reads `search_path` from the URL)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'hub.db'}"
        return
    url = os.environ.get("TOOLHUB_TEST_POSTGRES_URL")
    if not url:
        missing_peer("set TOOLHUB_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test for PostgreSQL")
    with ThreadPoolExecutor(1) as thread:  # Playwright's sync API keeps an event loop running in this thread
        schema = thread.submit(anyio.run, create_schema, url).result()
        try:
            yield f"{url}?search_path={schema}"
        finally:
            thread.submit(anyio.run, drop_schema, url, schema).result()


@pytest.fixture(scope="module")
def backend() -> str:
    """The store the module's hub uses; TOOLHUB_UI_STORE=postgres runs the browser tests on PostgreSQL."""
    return os.environ.get("TOOLHUB_UI_STORE", "sqlite")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, backend: str) -> Iterator[str]:
    tmp: Path = tmp_path_factory.mktemp("ui")
    with database_url(tmp, backend) as db_url, hub_at(tmp, db_url) as url:
        yield url


@contextlib.contextmanager
def hub_at(tmp: Path, db_url: str) -> Iterator[str]:
    shop = tmp / "shop.db"
    make_db(shop)
    fake = FakeOpenAI()
    with serve_app(fake.app) as upstream, refused_port() as refused:
        params = {"api_base": f"{upstream}/v1", "api_key": API_KEY}
        config: dict[str, Any] = {
            "model_list": [
                {"model_name": "chat", "litellm_params": {"model": "openai/text", **params,
                                                          "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}},
                {"model_name": "agent", "litellm_params": {"model": "openai/agent", **params}},
                {"model_name": "down", "litellm_params": {"model": "openai/text", "api_key": API_KEY,
                                                          "api_base": f"http://127.0.0.1:{refused}/v1"}},
            ],
            "general_settings": {"master_key": MASTER_KEY, "database_url": db_url,
                                 "max_tool_rounds": 3},
            "mcp_servers": {"postgres_db": {"transport": "stdio", "command": sys.executable, "cwd": str(ROOT),
                                            "args": ["-m", "tools.postgres_db", "--dsn", f"sqlite:///{shop}"]},
                            "pictures": {"transport": "stdio", "command": sys.executable,
                                         "args": [str(Path(__file__).parent / "servers" / "pictures.py")]}},
        }  # fmt: skip
        with serve_app(build_app(parse_config(config, {}))) as url:
            wait_for_tools(url, {"postgres_db", "pictures"}, MASTER_KEY)
            yield url


class Console:
    """What the page printed as errors, and every request it tried to send off the host."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.blocked: list[str] = []


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def page(browser: Any, console: Console, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context at 1280x800; requests off 127.0.0.1 are aborted and recorded."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})

    def only_loopback(route: Any) -> None:
        if route.request.url.startswith(("http://127.0.0.1:", "data:")):
            route.continue_()
        else:
            console.blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_loopback)
    tab = context.new_page()
    tab.on("console", lambda m: console.errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: console.errors.append(str(e)))
    tab.set_default_timeout(10_000)
    yield tab
    context.close()


def shot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under tests/ui/artifacts/ (not committed)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def login(page: Any, url: str, key: str = MASTER_KEY) -> None:
    page.goto(f"{url}/ui")
    page.fill("input[name=key]", key)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/ui")
