"""Console pages driven in process (no browser): what they show for odd upstream schemas, expired keys, prices and
budgets, names with direction controls, and how they answer a virtual key or a session that ended."""

from __future__ import annotations

import html
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest

from tests.ui.inprocess import MASTER_KEY, ORIGIN, SERVERS, InProcessHub, console_login, hub_config, make_key

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
PRICED = {"input_cost_per_token": 7.5e-8, "output_cost_per_token": 1e-10}
"""$0.075 and $0.0001 per million tokens: shown as $0.07 and $0.00 (free) with two decimals."""


@pytest.fixture
async def odd(tmp_path: Path) -> AsyncIterator[httpx2.AsyncClient]:
    """The hub with `odd` (tools with untrustworthy input schemas), `broken` (exits at once) and a priced alias."""
    servers = {
        "odd": {"transport": "stdio", "command": sys.executable, "args": [str(SERVERS / "odd.py")]},
        "broken": {"transport": "stdio", "command": sys.executable, "args": ["-c", "raise SystemExit(3)"]},
    }
    async with InProcessHub(hub_config(tmp_path, servers, priced=PRICED)) as client:
        yield client


@pytest.mark.anyio
async def test_a_tool_with_an_enum_that_is_no_list_leaves_the_mcp_page_and_its_tools_usable(
    odd: httpx2.AsyncClient,
) -> None:
    csrf = await console_login(odd)
    page = await odd.get("/ui/mcp")
    assert page.status_code == 200, page.text[:300]
    assert page.headers["content-type"].startswith("text/html")
    assert "odd__pick" in page.text and "odd__big" in page.text
    assert '<input name="arg:a" value="">' in page.text  # enum 5: a plain text field
    assert "<option>1</option><option>null</option><option>z</option>" in page.text
    called = await odd.post("/ui/mcp/call", data={"csrf": csrf, "name": "odd__pick", "arg:a": "five", "arg:d": "7"},
                            headers={**ORIGIN, "hx-request": "true"})  # fmt: skip
    assert called.status_code == 200
    assert html.unescape(called.text).count('{"a": "five", "d": 7}') == 1


@pytest.mark.anyio
async def test_the_overview_says_how_many_mcp_servers_are_ready_in_words(odd: httpx2.AsyncClient) -> None:
    await console_login(odd)
    page = html.unescape((await odd.get("/ui")).text)
    assert "MCP: 1 of 2 servers ready; not ready: broken (" in page
    assert '{ "' not in page and '"odd": "ready"' not in page
    assert "Degraded: broken: " in page


@pytest.mark.anyio
async def test_an_expired_key_reads_expired_not_active(odd: httpx2.AsyncClient) -> None:
    await make_key(odd, key_alias="gone", duration="0s")
    await make_key(odd, key_alias="fresh", duration="1d")
    await console_login(odd)
    page = (await odd.get("/ui/keys")).text
    assert '<span class="bad">expired</span>' in _row(page, "gone") and "active" not in _row(page, "gone")
    assert '<span class="good">active</span>' in _row(page, "fresh")


@pytest.mark.anyio
async def test_prices_budgets_and_spend_are_written_as_dollars_with_the_digits_they_need(
    odd: httpx2.AsyncClient,
) -> None:
    await make_key(odd, key_alias="tiny", max_budget=0.000001)
    await make_key(odd, key_alias="ten", max_budget=10.5, budget_duration="30d")
    await console_login(odd)
    keys = (await odd.get("/ui/keys")).text
    assert "<td>$0.000001</td>" in _row(keys, "tiny") and "<td>$10.50 / 30d</td>" in _row(keys, "ten")
    assert "<td>$0.00</td>" in _row(keys, "ten") and "e-0" not in keys
    models = (await odd.get("/ui/models")).text
    assert "<td>$0.075 / $0.0001</td>" in models


@pytest.mark.anyio
async def test_emptying_the_alias_in_the_edit_form_clears_it(odd: httpx2.AsyncClient) -> None:
    token = (await make_key(odd, key_alias="edit-me", rpm_limit=3))["token"]
    csrf = await console_login(odd)
    edit = (await odd.get("/ui/keys", params={"edit": token})).text
    form = edit[edit.index('id="edit-form"') :]
    sent = dict.fromkeys(re.findall(r'name="(has_\w+)"', form), "1")
    saved = await odd.post("/ui/keys/update", data={**sent, "csrf": csrf, "key": token, "rpm_limit": "7"},
                           headers=ORIGIN)  # fmt: skip
    assert saved.status_code == 303, saved.text
    info = (await odd.get("/key/info", params={"key": token}, headers=AUTH)).json()["info"]
    assert (info["key_alias"], info["rpm_limit"]) == (None, 7)


@pytest.mark.anyio
async def test_an_alias_with_direction_controls_is_shown_with_them_written_out(odd: httpx2.AsyncClient) -> None:
    token = (await make_key(odd, key_alias="admin\u202etoor"))["token"]
    await console_login(odd)
    keys = (await odd.get("/ui/keys", params={"edit": token})).text
    assert '<td class="name">admin[U+202E]toor</td>' in keys
    assert 'name="key_alias" value="admin\u202etoor"' in keys  # saving the form keeps the alias as it is
    assert "\u202e" not in re.sub(r"<[^>]*>", "", keys)  # no text on the page holds it (attributes may)


@pytest.mark.anyio
async def test_a_too_long_alias_is_refused_in_characters(odd: httpx2.AsyncClient) -> None:
    csrf = await console_login(odd)
    created = await odd.post("/ui/keys/create", data={"csrf": csrf, "key_alias": "a" * 5000}, headers=ORIGIN)
    assert created.status_code == 400
    assert "Invalid &#39;key_alias&#39;: String should have at most 200 characters" in created.text


@pytest.mark.anyio
async def test_a_virtual_key_posting_check_every_deployment_is_refused_with_403(odd: httpx2.AsyncClient) -> None:
    csrf = await console_login(odd, (await make_key(odd))["key"])
    checked = await odd.post("/ui/models/health", data={"csrf": csrf}, headers=ORIGIN)
    assert checked.status_code == 403
    assert "Only the master key may check every deployment." in checked.text


@pytest.mark.anyio
async def test_an_htmx_request_after_the_session_ended_sends_the_browser_to_the_login_page(
    odd: httpx2.AsyncClient,
) -> None:
    csrf = await console_login(odd)
    cookies = dict(odd.cookies.items())
    assert (await odd.post("/ui/logout", data={"csrf": csrf}, headers=ORIGIN)).status_code == 303
    odd.cookies.update(cookies)  # the browser still holds the cookie of the session that ended
    htmx = {**ORIGIN, "hx-request": "true", "x-csrf-token": csrf}
    tested = await odd.post("/ui/models/test", data={"csrf": csrf, "model": "chat"}, headers=htmx)
    top = await odd.get("/ui/overview/top", headers={"hx-request": "true"})
    plain = await odd.post("/ui/models/test", data={"csrf": csrf, "model": "chat"}, headers=ORIGIN)
    for answer in (tested, top):
        assert (answer.status_code, answer.headers.get("hx-redirect"), answer.text) == (401, "/ui/login", "")
    assert plain.status_code == 401 and "Your session ended" in plain.text


@pytest.mark.anyio
async def test_every_page_names_an_icon_that_is_served(odd: httpx2.AsyncClient) -> None:
    login = (await odd.get("/ui/login")).text
    href = re.findall(r'<link rel="icon" href="([^"]+)"', login)
    assert href == ["/ui/static/favicon.svg"]
    icon = await odd.get(href[0])
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")


def _row(page: str, alias: str) -> str:
    """The Keys table row of `alias`."""
    start = page.index(f'<tr id="key-{alias}">')
    return page[start : page.index("</tr>", start)]
