"""The console in the browser with long and hostile values: a 103-character model alias, a key alias of 150, a tool
description of 3,000 characters without a space, an upstream schema no form builder should trust. No page may be
wider than the window, the Edit form opens whole, and a session that ended sends the browser to the login page."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from hub.config import parse_config
from hub.server import build_app
from tests.fakes.openai_upstream import API_KEY, FakeOpenAI
from tests.support.hub import wait_for_tools
from tests.support.servers import serve_app
from tests.ui.conftest import MASTER_KEY, Console, login, shot

LONG_MODEL = "a-very-long-model-alias-name-that-goes-on-and-on-and-on-without-any-break-whatsoever-to-test-overflow"
LONG_KEY = "k" * 150
AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}
PAGES = ("/ui", "/ui/models", "/ui/keys", "/ui/logs", "/ui/mcp", "/ui/playground")
WIDTHS = (1280, 390)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A hub whose aliases, keys, logs and tools hold the long values (one request of each alias is logged)."""
    tmp: Path = tmp_path_factory.mktemp("long")
    with serve_app(FakeOpenAI().app) as upstream:
        params = {"api_base": f"{upstream}/v1", "api_key": API_KEY, "model": "openai/text"}
        config: dict[str, Any] = {
            "model_list": [{"model_name": "chat", "litellm_params": {**params, "input_cost_per_token": 1e-6}},
                           {"model_name": LONG_MODEL, "litellm_params": params}],
            "general_settings": {"master_key": MASTER_KEY, "database_url": f"sqlite:///{tmp / 'hub.db'}"},
            "mcp_servers": {"odd": {"transport": "stdio", "command": sys.executable,
                                    "args": [str(Path(__file__).parent / "servers" / "odd.py")]}},
        }  # fmt: skip
        with serve_app(build_app(parse_config(config, {}))) as url:
            wait_for_tools(url, {"odd"}, MASTER_KEY)
            key = httpx2.post(f"{url}/key/generate", headers=AUTH, json={"key_alias": LONG_KEY}).json()["key"]
            for model in ("chat", LONG_MODEL):
                body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
                answer = httpx2.post(f"{url}/v1/chat/completions", json=body, timeout=30,
                                     headers={"Authorization": f"Bearer {key}"})  # fmt: skip
                assert answer.status_code == 200, answer.text
            yield url


@pytest.fixture
def wide(browser: Any, console: Console, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A page in a window as wide as the test's `width` parameter (1280 or 390)."""
    width: int = request.param
    context = browser.new_context(viewport={"width": width, "height": 800}, is_mobile=width < 600)
    tab = context.new_page()
    tab.on("console", lambda m: console.errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: console.errors.append(str(e)))
    tab.set_default_timeout(10_000)
    yield tab
    context.close()


@pytest.mark.parametrize("wide", WIDTHS, indirect=True)
def test_no_page_is_wider_than_the_window_with_long_names_and_descriptions(
    hub: str, wide: Any, console: Console
) -> None:
    width = wide.viewport_size["width"]
    login(wide, hub)
    wider: dict[str, int] = {}  # path: how many pixels wider than the window
    for path in PAGES:
        wide.goto(f"{hub}{path}")
        wide.wait_for_load_state("networkidle")
        big = wide.locator("details.tool", has_text="odd__big").locator("summary")
        if path == "/ui/mcp" and big.count():
            big.first.click()
        if _overflow(wide, width) > 0:
            wider[path] = _overflow(wide, width)
        shot(wide, f"long-{width}{path.replace('/', '-')}")
    assert wider == {}
    assert console.errors == []


@pytest.mark.parametrize("wide", [390], indirect=True)
def test_a_virtual_key_with_a_long_alias_fits_a_phone(hub: str, wide: Any, console: Console) -> None:
    created = httpx2.post(f"{hub}/key/generate", headers=AUTH, json={"key_alias": "v" * 150}).json()
    login(wide, hub, created["key"])
    for path in ("/ui", "/ui/keys"):
        wide.goto(f"{hub}{path}")
        wide.wait_for_load_state("networkidle")
        assert _overflow(wide, 390) <= 0, path
    shot(wide, "long-390-virtual-keys")
    assert console.errors == []


def test_the_edit_form_opens_whole_below_its_key_without_squeezing_the_table(
    hub: str, page: Any, console: Console
) -> None:
    login(page, hub)
    page.goto(f"{hub}/ui/keys")
    limits = page.locator("td.nowrap").first
    height = limits.bounding_box()["height"]
    page.locator(f"#key-{LONG_KEY}").get_by_role("link", name="Edit").click()
    form = page.locator("#edit-form form")
    form.wait_for()
    table = page.locator("div.scroll", has=form)
    assert table.evaluate("el => el.scrollWidth - el.clientWidth") <= 0  # nothing cut off at the card's edge
    box, card = form.get_by_role("button", name="Save").bounding_box(), table.bounding_box()
    assert box["x"] >= card["x"] and box["x"] + box["width"] <= card["x"] + card["width"]
    assert limits.bounding_box()["height"] == height  # "∞ rpm · ∞ tpm" still on one line
    assert form.locator("input[name=key_alias]").evaluate("el => el === document.activeElement")
    shot(page, "long-1280-keys-edit")
    assert console.errors == []


def test_an_htmx_action_after_the_session_ended_goes_to_the_login_page(hub: str, page: Any, console: Console) -> None:
    login(page, hub)
    page.goto(f"{hub}/ui/models")
    _end(hub, *_session(page))
    page.locator("tr", has_text="chat").get_by_role("button", name="Test").click()
    page.wait_for_url(f"{hub}/ui/login")
    assert page.locator("input[name=key]").is_visible() and page.locator(".test-result").count() == 0
    assert [e for e in console.errors if "401" not in e] == []


def test_the_overview_goes_to_the_login_page_when_the_session_ends_while_it_loads(
    hub: str, page: Any, console: Console
) -> None:
    login(page, hub)
    page.goto(f"{hub}/ui/keys")
    session = _session(page)

    def end_first(route: Any) -> None:
        _end(hub, *session)
        route.continue_()

    page.route("**/ui/overview/series*", end_first)
    page.get_by_role("link", name="Overview", exact=True).click()
    page.wait_for_url(f"{hub}/ui/login")
    assert [e for e in console.errors if "401" not in e] == []


def _overflow(page: Any, width: int) -> int:
    """How much wider than `width` the page is (a phone's `innerWidth` grows with the page: it zooms out)."""
    return page.evaluate("document.documentElement.scrollWidth") - width


def _session(page: Any) -> tuple[dict[str, str], str]:
    """The page's session cookie and CSRF token."""
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    return cookies, page.evaluate("() => document.querySelector('input[name=csrf]').value")


def _end(hub: str, cookies: dict[str, str], csrf: str) -> None:
    """Log a session out from another client (the browser keeps its cookie)."""
    ended = httpx2.post(f"{hub}/ui/logout", data={"csrf": csrf}, headers={"origin": hub}, cookies=cookies)
    assert ended.status_code == 303
