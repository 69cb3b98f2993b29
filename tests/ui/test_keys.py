"""The Keys page: create a key (its sk- secret shown once) and use it on /v1, block and unblock it, edit, delete."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.ui.conftest import Console, login, shot


def _client(hub: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{hub}/v1", api_key=key, max_retries=0, timeout=20)


def _ask(hub: str, key: str) -> str:
    with _client(hub, key) as client:
        answer = client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])
    return answer.choices[0].message.content or ""


def test_a_key_created_on_the_page_works_on_v1_until_the_page_blocks_it(hub: str, page: Any, console: Console) -> None:
    login(page, hub)
    page.get_by_role("link", name="Keys", exact=True).click()
    page.get_by_text("Create a key").click()
    form = page.locator("form[action='/ui/keys/create']")
    form.locator("input[name=key_alias]").fill("ui-created")
    form.locator("input[name=models]").fill("chat")
    form.locator("input[name=max_budget]").fill("5")
    form.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-secret").inner_text()
    shot(page, "keys-created")
    assert secret.startswith("sk-") and len(secret) > 20
    assert _ask(hub, secret)

    row = page.locator("#key-ui-created")
    assert "$5" in row.inner_text() and "chat" in row.inner_text()
    assert page.url == f"{hub}/ui/keys"
    page.reload()
    assert page.locator("#new-secret").count() == 0 and secret not in page.content()  # shown once

    page.locator("#key-ui-created").get_by_role("button", name="Block").click()
    page.locator("#key-ui-created").get_by_text("blocked").wait_for()
    with pytest.raises(openai.APIStatusError) as refused:
        _ask(hub, secret)
    assert refused.value.status_code in (401, 403)

    page.locator("#key-ui-created").get_by_role("button", name="Unblock").click()
    page.locator("#key-ui-created").get_by_text("active").wait_for()
    assert _ask(hub, secret)
    assert console.errors == [] and console.blocked == []


def test_a_key_is_edited_and_deleted_from_the_page(hub: str, page: Any, console: Console) -> None:
    login(page, hub)
    page.goto(f"{hub}/ui/keys")
    page.get_by_text("Create a key").click()
    page.locator("form[action='/ui/keys/create'] input[name=key_alias]").fill("ui-edit")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-secret").inner_text()
    page.locator("#key-ui-edit").get_by_role("link", name="Edit").click()
    form = page.locator("#edit-form")
    form.locator("input[name=rpm_limit]").fill("7")
    form.get_by_role("button", name="Save").click()
    page.locator("#key-ui-edit").get_by_text("7 rpm").wait_for()

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#key-ui-edit").get_by_role("button", name="Delete").click()
    page.locator("#key-ui-edit").wait_for(state="detached")
    with pytest.raises(openai.AuthenticationError):
        _ask(hub, secret)
    assert console.errors == [] and console.blocked == []


def test_the_api_s_own_error_is_shown_for_a_bad_value(hub: str, page: Any, console: Console) -> None:
    login(page, hub)
    page.goto(f"{hub}/ui/keys")
    page.get_by_text("Create a key").click()
    page.locator("form[action='/ui/keys/create'] input[name=rpm_limit]").fill("lots")
    page.get_by_role("button", name="Create key").click()
    alert = page.locator("[role=alert]")
    assert "rpm_limit" in alert.inner_text()
    assert page.locator("#new-secret").count() == 0
    assert [e for e in console.errors if "400" not in e] == []
