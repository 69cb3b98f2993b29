"""Logging in and out of /ui, a wrong key, the cookie's flags, cross-site protection and the navigation."""

from __future__ import annotations

from typing import Any

import httpx2

from tests.ui.conftest import MASTER_KEY, Console, login, shot

NAV = ["Overview", "Models", "Keys", "Logs", "MCP", "Playground"]


def test_ui_without_a_session_shows_a_login_page_with_one_password_field(hub: str, page: Any, console: Console) -> None:
    page.goto(f"{hub}/ui/keys")
    assert page.url == f"{hub}/ui/login"
    assert page.locator("input").count() == 1
    assert page.locator("input").get_attribute("type") == "password"
    assert page.get_by_role("link", name="Keys").count() == 0
    shot(page, "login")
    assert console.errors == [] and console.blocked == []


def test_a_wrong_key_shows_an_error_and_no_data(hub: str, page: Any, console: Console) -> None:
    page.goto(f"{hub}/ui")
    page.fill("input[name=key]", "sk-not-a-key")
    page.click("button[type=submit]")
    page.wait_for_selector("[role=alert]")
    assert "Wrong key" in page.inner_text("[role=alert]")
    assert page.locator("nav a").count() == 0
    assert page.context.cookies() == []
    page.goto(f"{hub}/ui/logs")
    assert page.url == f"{hub}/ui/login"
    # the 401 of the wrong key is the only console error
    assert [e for e in console.errors if "401" not in e] == []


def test_the_master_key_logs_in_with_a_strict_httponly_cookie_and_logs_out(
    hub: str, page: Any, console: Console
) -> None:
    login(page, hub)
    assert [a.inner_text() for a in page.locator("header nav a").all()] == NAV
    (cookie,) = page.context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["expires"] > 0
    assert MASTER_KEY not in cookie["value"]
    for name in NAV:
        page.get_by_role("link", name=name, exact=True).click()
        page.wait_for_selector(f"h1:text-is('{name}')")
        shot(page, f"page-{name.lower()}")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{hub}/ui/login")
    page.goto(f"{hub}/ui/keys")
    assert page.url == f"{hub}/ui/login"
    assert console.errors == [] and console.blocked == []


def test_the_old_cookie_is_dead_after_logout(hub: str) -> None:
    with httpx2.Client(base_url=hub) as client:
        client.post("/ui/login", data={"key": MASTER_KEY}, headers={"origin": hub})
        cookie = client.cookies.get("toolhub_ui")
        assert cookie and client.get("/ui/keys").status_code == 200
        csrf = client.get("/ui/keys").text.split('name="csrf" value="')[1].split('"')[0]
        client.post("/ui/logout", data={"csrf": csrf}, headers={"origin": hub})
    again = httpx2.get(f"{hub}/ui/keys", cookies={"toolhub_ui": cookie})
    assert again.status_code == 303 and again.headers["location"] == "/ui/login"


def test_state_changes_need_our_origin_and_the_csrf_token(hub: str) -> None:
    with httpx2.Client(base_url=hub) as client:
        client.post("/ui/login", data={"key": MASTER_KEY}, headers={"origin": hub})
        csrf = client.get("/ui/keys").text.split('name="csrf" value="')[1].split('"')[0]
        foreign = client.post("/ui/keys/create", data={"csrf": csrf, "key_alias": "x1"},
                              headers={"origin": "http://evil.example"})  # fmt: skip
        no_token = client.post("/ui/keys/create", data={"key_alias": "x2"}, headers={"origin": hub})
        ok = client.post("/ui/keys/create", data={"csrf": csrf, "key_alias": "x3"}, headers={"origin": hub})
    assert (foreign.status_code, no_token.status_code, ok.status_code) == (403, 403, 200)
    listing = httpx2.get(f"{hub}/key/list", params={"return_full_object": "true", "size": 100},
                         headers={"Authorization": f"Bearer {MASTER_KEY}"}).json()  # fmt: skip
    aliases = {k["key_alias"] for k in listing["keys"]}
    assert "x3" in aliases and not {"x1", "x2"} & aliases


def test_a_cross_site_login_is_refused(hub: str) -> None:
    response = httpx2.post(f"{hub}/ui/login", data={"key": MASTER_KEY}, headers={"origin": "http://evil.example"})
    assert response.status_code == 403 and "toolhub_ui" not in response.cookies


def test_logging_in_again_in_the_same_tab_gives_working_forms(hub: str, page: Any, console: Console) -> None:
    login(page, hub)
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{hub}/ui/login")
    page.fill("input[name=key]", MASTER_KEY)
    page.click("button[type=submit]")
    page.wait_for_url(f"{hub}/ui")
    page.get_by_role("link", name="Keys", exact=True).click()
    page.get_by_text("Create a key").click()
    page.locator("form[action='/ui/keys/create'] input[name=key_alias]").fill("after-relogin")
    page.get_by_role("button", name="Create key").click()
    assert page.locator("#new-secret").inner_text().startswith("sk-")
    assert console.errors == [] and console.blocked == []


def test_bad_page_inputs_get_a_clear_error_or_a_sane_default(hub: str) -> None:
    with httpx2.Client(base_url=hub) as client:
        client.post("/ui/login", data={"key": MASTER_KEY}, headers={"origin": hub})
        bad_date = client.get("/ui/logs", params={"start": "yesterday-ish"})
        bad_status = client.get("/ui/logs", params={"status": "maybe"})
        bad_cursor = client.get("/ui/logs", params={"before": "not-a-cursor"})
        bad_range = client.get("/ui/overview/series", params={"range": "decade"})
        bad_action = client.post("/ui/keys/explode", data={"csrf": _csrf(client)}, headers={"origin": hub})
    assert bad_date.status_code == 400 and "Invalid &#39;start&#39;" in bad_date.text
    assert bad_status.status_code == 400 and "must be success or failure" in bad_status.text
    assert bad_cursor.status_code == 200 and bad_range.status_code == 200
    assert len(bad_range.json()["t"]) in (24, 25)  # the default range: a day of hourly buckets, the current one last
    assert bad_action.status_code == 404 and "No such action: explode." in bad_action.text


def _csrf(client: httpx2.Client) -> str:
    return client.get("/ui/keys").text.split('name="csrf" value="')[1].split('"')[0]
