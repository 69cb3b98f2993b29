"""The console on a phone and from the keyboard alone."""

from __future__ import annotations

from typing import Any

from tests.ui.conftest import MASTER_KEY, Console, shot


def test_the_console_fits_a_phone_width(hub: str, browser: Any, console: Console) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("http://127.0.0.1:")
                  else (console.blocked.append(route.request.url), route.abort()))  # fmt: skip
    page = context.new_page()
    page.on("console", lambda m: console.errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{hub}/ui")
    page.fill("input[name=key]", MASTER_KEY)
    page.click("button[type=submit]")
    page.wait_for_url(f"{hub}/ui")
    for path in ("/ui", "/ui/keys", "/ui/logs", "/ui/mcp", "/ui/playground", "/ui/models"):
        page.goto(f"{hub}{path}")
        page.wait_for_load_state("networkidle")
        overflow = page.evaluate("document.documentElement.scrollWidth") - 390  # a phone's innerWidth grows with it
        assert overflow <= 0, f"{path} is {overflow}px wider than the phone"
        assert page.get_by_role("link", name="Playground").is_visible()
        shot(page, f"phone{path.replace('/', '-')}")
    context.close()
    assert console.errors == [] and console.blocked == []


def test_login_and_navigation_work_from_the_keyboard(hub: str, page: Any, console: Console) -> None:
    page.goto(f"{hub}/ui")
    page.keyboard.type(MASTER_KEY)  # the password field has the focus
    page.keyboard.press("Enter")
    page.wait_for_url(f"{hub}/ui")
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Keys":
            break
    page.keyboard.press("Enter")
    page.wait_for_selector("h1:text-is('Keys')")
    page.goto(f"{hub}/ui/playground")
    page.focus("#pg-prompt")
    page.keyboard.type("hello")
    page.keyboard.press("Control+Enter")  # sends without the mouse
    page.wait_for_selector("#pg-status:has-text('Done')")
    assert page.inner_text("#pg-answer")
    assert console.errors == [] and console.blocked == []
