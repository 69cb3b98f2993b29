"""Virtual keys end to end: `/key/*` over HTTP, the openai SDK on /v1 with a virtual key, spend, on both stores."""

from __future__ import annotations

import httpx2
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.keys.conftest import COST, MASTER_KEY, sdk

USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


def generate(admin: httpx2.Client, **body: object) -> dict[str, object]:
    response = admin.post("/key/generate", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_key_lives_through_generate_use_update_block_and_delete(admin: httpx2.Client, gateway_url: str) -> None:
    created = generate(admin, key_alias="team-a", models=["text"], metadata={"team": "a"}, rpm_limit=100)
    key = str(created["key"])
    assert key.startswith("sk-") and created["key_name"] == f"sk-...{key[-4:]}"
    assert (created["models"], created["spend"], created["blocked"]) == (["text"], 0.0, False)
    with sdk(gateway_url, key) as client:
        raw = client.chat.completions.with_raw_response.create(model="text", messages=USER)
        assert raw.parse().choices[0].message.content == "You said: hi"
        assert float(raw.headers["x-toolhub-cost"]) == COST
        assert float(raw.headers["x-toolhub-overhead-duration-ms"]) >= 0
        assert [m.id for m in client.models.list()] == ["text"]
        with pytest.raises(openai.PermissionDeniedError) as denied:
            client.chat.completions.create(model="json", messages=USER)
        assert denied.value.code == "model_not_allowed"

        info = admin.get("/key/info", params={"key": key}).json()
        assert (info["info"]["key_alias"], info["info"]["spend"], info["info"]["metadata"]) == (
            "team-a",
            COST,
            {"team": "a"},
        )
        own = httpx2.get(f"{gateway_url}/key/info", headers={"authorization": f"Bearer {key}"}).json()
        assert own["info"]["token"] == created["token"]
        listed = admin.get("/key/list", params={"key_alias": "team-a"}).json()
        assert listed == {"keys": [created["token"]], "total_count": 1, "current_page": 1, "total_pages": 1}

        updated = admin.post("/key/update", json={"key": key, "models": ["text", "json"], "rpm_limit": None}).json()
        assert (updated["models"], updated["rpm_limit"]) == (["text", "json"], None)
        assert client.chat.completions.create(model="json", messages=USER, response_format={"type": "json_object"})

        assert admin.post("/key/block", json={"key": key}).json()["blocked"] is True
        with pytest.raises(openai.PermissionDeniedError) as blocked:
            client.models.list()
        assert blocked.value.code == "key_blocked"
        assert admin.post("/key/unblock", json={"key": created["token"]}).json()["blocked"] is False
        client.models.list()

        assert admin.post("/key/delete", json={"keys": [key]}).json() == {"deleted_keys": [created["token"]]}
        with pytest.raises(openai.AuthenticationError) as gone:
            client.models.list()
        assert gone.value.code == "invalid_api_key"


def test_only_the_master_key_manages_keys(admin: httpx2.Client, gateway_url: str) -> None:
    key = str(generate(admin)["key"])
    as_key = httpx2.post(f"{gateway_url}/key/generate", json={}, headers={"authorization": f"Bearer {key}"})
    assert (as_key.status_code, as_key.json()["error"]["code"]) == (403, "master_key_required")
    anonymous = httpx2.get(f"{gateway_url}/key/list")
    assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (401, "missing_api_key")
    assert httpx2.get(f"{gateway_url}/v1/models", headers={"authorization": "Bearer sk-wrong"}).status_code == 401


@pytest.mark.parametrize(
    ("body", "param"),
    [({"max_budget": "lots"}, "max_budget"), ({"budget_duration": "3 fortnights"}, "budget_duration"),
     ({"duration": "soon"}, "duration"), ({"rpm_limit": -1}, "rpm_limit"), ({"colour": "red"}, "colour"),
     ({"key": "not-an-sk-key"}, "key"), ({"models": "text"}, "models")],
)  # fmt: skip
def test_bad_generate_requests_get_a_400_naming_the_field(
    admin: httpx2.Client, body: dict[str, object], param: str
) -> None:
    response = admin.post("/key/generate", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)


def test_the_master_key_cannot_be_stored_as_a_virtual_key(admin: httpx2.Client) -> None:
    response = admin.post("/key/generate", json={"key": MASTER_KEY, "key_alias": "old-master"})
    error = response.json()["error"]
    assert (response.status_code, error["param"], error["code"]) == (400, "key", "invalid_value")
    assert admin.get("/key/list").json()["total_count"] == 0  # it would keep working once the master key rotates


def test_litellm_fields_toolhub_does_not_implement_are_accepted(admin: httpx2.Client) -> None:
    created = generate(admin, user_id="u1", team_id="t1", tags=["x"], key_alias="litellm-script")
    assert created["key_alias"] == "litellm-script"
    duplicate = admin.post("/key/generate", json={"key_alias": "litellm-script"})
    assert (duplicate.status_code, duplicate.json()["error"]["code"]) == (400, "key_exists")


def test_an_expired_key_is_refused_saying_so(admin: httpx2.Client, gateway_url: str) -> None:
    key = str(generate(admin, duration="0s")["key"])
    with sdk(gateway_url, key) as client, pytest.raises(openai.AuthenticationError) as expired:
        client.models.list()
    assert expired.value.code == "key_expired"


def test_a_key_over_its_budget_gets_429_naming_the_budget(admin: httpx2.Client, gateway_url: str) -> None:
    key = str(generate(admin, max_budget=20.0, budget_duration="30d")["key"])
    with sdk(gateway_url, key) as client:
        client.chat.completions.create(model="text", messages=USER)
        client.chat.completions.create(model="text", messages=USER)  # 13 < 20: admitted, ends at 26
        with pytest.raises(openai.RateLimitError) as refused:
            client.chat.completions.create(model="text", messages=USER)
    assert refused.value.code == "budget_exceeded"
    assert "max_budget" in refused.value.message
    assert int(refused.value.response.headers["retry-after"]) > 29 * 86400
    info = admin.get("/key/info", params={"key": key}).json()["info"]
    assert info["spend"] == 2 * COST and info["budget_reset_at"] is not None


def test_mcp_permissions_reach_the_key_info(admin: httpx2.Client) -> None:
    created = generate(admin, mcp_servers=["time"], object_permission={"mcp_tool_permissions": {"git": ["git_log"]}})
    assert (created["mcp_servers"], created["mcp_tools"]) == (["time"], ["git/git_log"])


def test_spend_logs_and_daily_summaries_filter_by_key_and_model(admin: httpx2.Client, gateway_url: str) -> None:
    a, b = str(generate(admin, key_alias="a")["key"]), str(generate(admin, key_alias="b")["key"])
    for key, n in ((a, 3), (b, 2)):
        with sdk(gateway_url, key) as client:
            for _ in range(n):
                client.chat.completions.create(model="text", messages=USER)
    with openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=MASTER_KEY, max_retries=0) as master:
        master.chat.completions.create(model="json", messages=USER, response_format={"type": "json_object"})

    logs = admin.get("/spend/logs", params={"api_key": a, "page_size": 2}).json()
    assert (logs["total"], logs["total_pages"], len(logs["data"])) == (3, 2, 2)
    row = logs["data"][0]
    assert (row["model"], row["spend"], row["prompt_tokens"], row["completion_tokens"], row["cached_tokens"],
            row["reasoning_tokens"], row["status"]) == ("text", COST, 12, 7, 2, 3, "success")  # fmt: skip
    assert admin.get("/spend/logs", params={"model": "json"}).json()["total"] == 1
    assert admin.get("/spend/logs", params={"end_date": "2000-01-01"}).json()["total"] == 0

    by_model = admin.get("/spend/daily", params={"group_by": "model"}).json()["data"]
    assert {(r["model"], r["requests"], r["spend"]) for r in by_model} == {("text", 5, 5 * COST), ("json", 1, 0.0)}
    by_key = admin.get("/spend/daily", params={"group_by": "key"}).json()["data"]
    assert sorted(r["spend"] for r in by_key) == [0.0, 2 * COST, 3 * COST]
    own = httpx2.get(f"{gateway_url}/spend/logs", headers={"authorization": f"Bearer {b}"}).json()
    assert own["total"] == 2  # a key sees only its own requests
    bad = admin.get("/spend/daily", params={"group_by": "team"})
    assert (bad.status_code, bad.json()["error"]["param"]) == (400, "group_by")
