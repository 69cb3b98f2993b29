"""A virtual key's session sees only its own key, spend and logs, and cannot manage keys."""

from __future__ import annotations

import uuid
from typing import Any

import httpx2

from tests.ui.conftest import MASTER_KEY, Console, login, shot

AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}


def _chat(hub: str, key: str, request_id: str) -> None:
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
    response = httpx2.post(f"{hub}/v1/chat/completions", json=body, timeout=30,
                           headers={"Authorization": f"Bearer {key}", "x-request-id": request_id})  # fmt: skip
    assert response.status_code == 200, response.text


def test_a_virtual_key_sees_only_its_own_data(hub: str, page: Any, console: Console) -> None:
    alias = f"viewer-{uuid.uuid4().hex[:6]}"
    created = httpx2.post(f"{hub}/key/generate", headers=AUTH, json={"key_alias": alias, "models": ["chat"]})
    other = httpx2.post(f"{hub}/key/generate", headers=AUTH, json={"key_alias": f"other-{alias}"})
    key, other_key = created.json()["key"], other.json()["key"]
    mine, theirs, masters = f"mine-{alias}", f"theirs-{alias}", f"master-{alias}"
    _chat(hub, key, mine)
    _chat(hub, other_key, theirs)
    _chat(hub, MASTER_KEY, masters)

    login(page, hub, key)
    assert alias in page.inner_text("header")
    assert f"other-{alias}" not in page.content()
    page.get_by_role("link", name="Logs", exact=True).click()
    page.wait_for_selector("h1:text-is('Logs')")
    assert page.locator("tr", has_text=mine).count() == 1
    assert page.locator("tr", has_text=theirs).count() == 0 and page.locator("tr", has_text=masters).count() == 0
    assert page.locator("select[name=key]").count() == 0
    shot(page, "virtual-logs")

    page.get_by_role("link", name="Keys", exact=True).click()
    page.wait_for_selector("h1:text-is('Your key')")
    assert page.locator("h1").inner_text() == "Your key"
    assert alias in page.inner_text("main") and f"other-{alias}" not in page.content()
    assert page.locator("form[action='/ui/keys/create']").count() == 0
    shot(page, "virtual-keys")
    assert console.errors == [] and console.blocked == []


def test_a_virtual_key_session_cannot_manage_keys_even_by_posting(hub: str) -> None:
    created = httpx2.post(f"{hub}/key/generate", headers=AUTH, json={"key_alias": f"poster-{uuid.uuid4().hex[:6]}"})
    with httpx2.Client(base_url=hub) as client:
        client.post("/ui/login", data={"key": created.json()["key"]}, headers={"origin": hub})
        page = client.get("/ui/playground").text
        csrf = page.split('data-csrf="')[1].split('"')[0]
        refused = client.post("/ui/keys/create", data={"csrf": csrf, "key_alias": "sneaky"}, headers={"origin": hub})
        blocked = client.post("/ui/keys/block", data={"csrf": csrf, "key": created.json()["token"]},
                              headers={"origin": hub})  # fmt: skip
    assert refused.status_code == 403 and blocked.status_code == 403
    assert "Only the master key may manage keys." in refused.text
    listing = httpx2.get(f"{hub}/key/list", params={"key_alias": "sneaky"}, headers=AUTH).json()
    assert listing["total_count"] == 0


def test_blocking_a_key_ends_its_console_session(hub: str) -> None:
    created = httpx2.post(f"{hub}/key/generate", headers=AUTH, json={"key_alias": f"ended-{uuid.uuid4().hex[:6]}"})
    with httpx2.Client(base_url=hub) as client:
        client.post("/ui/login", data={"key": created.json()["key"]}, headers={"origin": hub})
        assert client.get("/ui/logs").status_code == 200
        httpx2.post(f"{hub}/key/block", headers=AUTH, json={"key": created.json()["token"]})
        after = client.get("/ui/logs")
    assert after.status_code == 303 and after.headers["location"] == "/ui/login"
