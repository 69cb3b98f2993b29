"""Logs, MCP, Playground, Models and Overview in the browser, with data made through the API."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx2

from tests.ui.conftest import MASTER_KEY, Console, login, shot

AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}
DB_TOOLS = [{"type": "mcp", "server_label": "postgres_db", "require_approval": "never"}]


def _chat(hub: str, model: str, request_id: str, **extra: Any) -> httpx2.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "What is in the database?"}], **extra}
    response = httpx2.post(f"{hub}/v1/chat/completions", headers={**AUTH, "x-request-id": request_id}, json=body,
                           timeout=30)  # fmt: skip
    assert response.status_code == 200, response.text
    return response


def test_logs_show_a_request_made_through_the_api_with_its_tool_calls(hub: str, page: Any, console: Console) -> None:
    plain, agent = f"ui-plain-{uuid.uuid4().hex[:8]}", f"ui-agent-{uuid.uuid4().hex[:8]}"
    _chat(hub, "chat", plain)
    _chat(hub, "agent", agent, tools=DB_TOOLS)
    login(page, hub)
    page.get_by_role("link", name="Logs", exact=True).click()
    page.wait_for_selector("h1:text-is('Logs')")
    row = page.locator("tr", has_text=plain)
    assert "chat" in row.inner_text() and "200" in row.inner_text()
    agent_row = page.locator("tr", has_text=agent)
    agent_row.get_by_text("2 calls").click()
    assert "postgres_db/list_tables" in agent_row.inner_text()
    shot(page, "logs")

    page.select_option("select[name=model]", "agent")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/ui/logs?*model=agent*")
    assert page.locator("tr", has_text=agent).count() == 1
    assert page.locator("tr", has_text=plain).count() == 0
    page.select_option("select[name=status]", "failure")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**status=failure*")
    assert page.locator("tr", has_text=agent).count() == 0
    assert console.errors == [] and console.blocked == []


def test_a_tool_called_from_the_mcp_page_shows_its_result(hub: str, page: Any, console: Console) -> None:
    login(page, hub)
    page.get_by_role("link", name="MCP", exact=True).click()
    tool = page.locator("details.tool", has_text="postgres_db__execute_query")
    tool.locator("summary").first.click()
    tool.locator("[name='arg:sql']").fill("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    tool.get_by_role("button", name="Call postgres_db__execute_query").click()
    result = tool.locator(".tool-result")
    result.wait_for()
    assert "orders" in result.inner_text() and "users" in result.inner_text()
    shot(page, "mcp-call")
    assert console.errors == [] and console.blocked == []


def test_a_form_made_from_a_schema_calls_a_tool_that_answers_an_image(hub: str, page: Any, console: Console) -> None:
    login(page, hub)
    page.goto(f"{hub}/ui/mcp")
    tool = page.locator("details.tool", has_text="pictures__square")
    tool.locator("summary").first.click()
    assert tool.locator("input[name='arg:size'][type=number][required]").count() == 1
    assert tool.locator("select[name='arg:label'] option").all_inner_texts() == ["none", "small"]
    tool.locator("input[name='arg:size']").fill("3")
    tool.locator("input[name='arg:red']").check()
    tool.get_by_role("button", name="Call pictures__square").click()
    image = tool.locator(".tool-result img")
    image.wait_for()
    assert image.get_attribute("src").startswith("data:image/png;base64,")
    assert image.evaluate("img => img.complete && img.naturalWidth") == 3
    assert console.errors == [] and console.blocked == []


def test_the_playground_streams_an_answer_and_shows_each_hub_tool_call_and_its_result(
    hub: str, page: Any, console: Console
) -> None:
    login(page, hub)
    page.get_by_role("link", name="Playground", exact=True).click()
    page.select_option("#pg-model", "agent")
    page.get_by_label("postgres_db").check()
    page.fill("#pg-prompt", "What is in the database?")
    seen: list[list[str]] = []  # the call list each time it changed, while the answer streamed
    page.expose_function("seen", lambda items: seen.append(items))
    page.evaluate("""() => new MutationObserver(() => window.seen(
        [...document.querySelectorAll('#pg-events li')].map((li) => li.innerText))).observe(
        document.getElementById('pg-events'), {subtree: true, childList: true, characterData: true})""")
    page.get_by_role("button", name="Send").click()
    page.wait_for_selector("#pg-status:has-text('Done')")
    answer = page.inner_text("#pg-answer")
    assert answer.startswith("Let me look.") and "Answer:" in answer and "Calling" not in answer
    events = page.locator("#pg-events li").all_inner_texts()
    assert [e.splitlines()[0] for e in events] == [
        "postgres_db__list_tables {}", 'postgres_db__describe_table {"table": "orders"}']  # fmt: skip
    assert events[0].splitlines()[1].startswith("answered in ") and '"orders"' in events[0]
    # Each call is shown as it starts ("running…") and completed when its result comes; when both events reach the
    # browser in one network read the observer sees only the end state, so the order itself is checked on the
    # stream (tests/loop/test_trace_e2e.py::test_the_sdk_streams_each_call_before_its_result_as_reasoning).
    assert seen and all(len(state) <= 2 for state in seen)
    assert page.locator("#pg-events li.tool-done").count() == 2
    shot(page, "playground")
    assert console.errors == [] and console.blocked == []


def test_the_models_page_lists_deployments_and_tests_one(hub: str, page: Any, console: Console) -> None:
    login(page, hub)
    page.get_by_role("link", name="Models", exact=True).click()
    row = page.locator("tr", has_text="$1.00 / $2.00")
    assert row.locator("th").inner_text() == "chat" and "openai" in row.inner_text()
    row.get_by_role("button", name="Test").click()
    page.locator(".test-result").wait_for()
    assert page.locator(".test-result").inner_text().startswith("chat: OK")
    page.get_by_role("button", name="Check every deployment").click()
    page.locator(".check").first.wait_for()
    assert page.locator("tr", has_text="$1.00 / $2.00").locator(".check").inner_text() == "check: OK"
    down = page.locator("tr", has=page.locator("th", has_text="down")).locator(".check")
    assert down.inner_text().startswith("check: ") and down.inner_text() != "check: OK"
    shot(page, "models-checked")
    assert console.errors == [] and console.blocked == []


def test_the_overview_draws_charts_and_lists_top_models(hub: str, page: Any, console: Console) -> None:
    _chat(hub, "chat", f"ui-overview-{uuid.uuid4().hex[:8]}")
    login(page, hub)
    page.wait_for_selector("#charts canvas")
    assert page.locator("#charts canvas").count() == 3
    assert "chat" in page.locator("section", has_text="Top models").inner_text()
    assert "ready" in page.locator("section", has_text="MCP servers").inner_text()
    assert "chat → openai/text: in rotation" in page.locator("section", has_text="Upstreams").inner_text()
    page.get_by_role("link", name="Last hour").click()
    page.wait_for_url("**/ui?range=hour")
    page.wait_for_selector("#charts canvas")
    shot(page, "overview")
    assert console.errors == [] and console.blocked == []


def test_logs_page_older_and_newer_through_more_than_one_page(hub: str, page: Any, console: Console) -> None:
    run = uuid.uuid4().hex[:6]
    with httpx2.Client(base_url=hub, headers=AUTH, timeout=30) as client:
        for i in range(55):
            body = {"model": "down", "messages": [{"role": "user", "content": "hi"}]}
            client.post("/v1/chat/completions", json=body, headers={"x-request-id": f"pg-{run}-{i:02d}"})
        _wait_for_logs(client, {f"pg-{run}-{i:02d}" for i in range(55)})
    login(page, hub)
    page.goto(f"{hub}/ui/logs?model=down")
    first = page.locator("tbody code").all_inner_texts()
    assert first[:2] == [f"pg-{run}-54", f"pg-{run}-53"] and len(first) == 50
    assert page.get_by_role("link", name="Newer").count() == 0
    page.get_by_role("link", name="Older").click()
    page.wait_for_url("**before=*")
    assert page.locator("tbody code").all_inner_texts() == [f"pg-{run}-{i:02d}" for i in (4, 3, 2, 1, 0)]
    assert page.get_by_role("link", name="Older").count() == 0
    page.get_by_role("link", name="Newer").click()
    page.wait_for_url("**after=*")
    assert page.locator("tbody code").all_inner_texts() == first
    assert console.errors == [] and console.blocked == []


def _wait_for_logs(client: httpx2.Client, request_ids: set[str]) -> None:
    """Wait (at most 30 s) until every request's spend log is stored: a failed request's record is written after
    its answer was sent, so under load the page could be read before the last ones."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = client.get("/spend/logs", params={"model": "down", "page_size": 1000}).json()["data"]
        if request_ids <= {row["request_id"] for row in rows}:
            return
        time.sleep(0.1)
    raise AssertionError(f"spend logs of {sorted(request_ids)[0]}... not stored within 30 s")
