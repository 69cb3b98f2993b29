"""GET /v1/responses/{id}/input_items paged as OpenAI pages it (`limit`, `after`, `order`), with the real SDK."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest

from tests.api import test_responses_support as support
from tests.api.test_responses_support import MASTER_KEY

fakes, gateway_url, client = support.fakes, support.gateway_url, support.client
THREE: Any = [{"role": "user", "content": "one"}, {"role": "assistant", "content": "two"},
              {"role": "user", "content": "three"}]  # fmt: skip


@pytest.fixture
def response_id(client: openai.OpenAI) -> str:
    return client.responses.create(model="text", input=THREE).id


@pytest.fixture
def admin(gateway_url: str) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=gateway_url, headers={"Authorization": f"Bearer {MASTER_KEY}"}) as c:
        yield c


def texts(items: list[Any]) -> list[str]:
    """Each item's first text part."""
    return [item["content"][0]["text"] for item in items]


def test_limit_gives_one_page_and_says_more_remain(admin: httpx2.Client, response_id: str) -> None:
    page = admin.get(f"/v1/responses/{response_id}/input_items", params={"limit": 1}).json()
    assert texts(page["data"]) == ["three"] and page["has_more"] is True
    assert page["first_id"] == page["last_id"] == page["data"][0]["id"]
    rest = admin.get(f"/v1/responses/{response_id}/input_items", params={"after": page["last_id"]}).json()
    assert texts(rest["data"]) == ["two", "one"] and rest["has_more"] is False
    assert (rest["first_id"], rest["last_id"]) == (rest["data"][0]["id"], rest["data"][-1]["id"])


def test_after_follows_the_chosen_order(admin: httpx2.Client, response_id: str) -> None:
    url = f"/v1/responses/{response_id}/input_items"
    first = admin.get(url, params={"order": "asc", "limit": 2}).json()
    assert texts(first["data"]) == ["one", "two"] and first["has_more"] is True
    second = admin.get(url, params={"order": "asc", "limit": 2, "after": first["last_id"]}).json()
    assert texts(second["data"]) == ["three"] and second["has_more"] is False
    last = admin.get(url, params={"order": "asc", "after": second["last_id"]}).json()
    assert last == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_the_sdk_pages_through_every_item(
    client: openai.OpenAI, admin: httpx2.Client, response_id: str, order: Any
) -> None:
    pages = client.responses.input_items.list(response_id, limit=1, order=order)
    assert len(pages.data) == 1 and pages.has_more is True
    ids = [item.id for item in pages]  # the SDK asks for each next page with `after`
    whole = admin.get(f"/v1/responses/{response_id}/input_items", params={"order": order}).json()["data"]
    expected = ["one", "two", "three"] if order == "asc" else ["three", "two", "one"]
    assert texts(whole) == expected and ids == [item["id"] for item in whole] and len(set(ids)) == 3


@pytest.mark.parametrize(
    ("params", "param"),
    [({"limit": "-1"}, "limit"), ({"limit": "0"}, "limit"), ({"limit": "101"}, "limit"), ({"limit": "abc"}, "limit"),
     ({"limit": "1.5"}, "limit"), ({"limit": "9" * 5000}, "limit"), ({"after": "nope"}, "after"),
     ({"order": "up"}, "order")],
)  # fmt: skip
def test_invalid_paging_gets_a_400_naming_the_param(
    admin: httpx2.Client, response_id: str, params: dict[str, str], param: str
) -> None:
    answer = admin.get(f"/v1/responses/{response_id}/input_items", params=params)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error" and param in error["message"]


def test_the_limit_defaults_to_20_and_goes_up_to_100(client: openai.OpenAI, admin: httpx2.Client) -> None:
    many: Any = [{"role": "user", "content": f"m{i}"} for i in range(105)]
    response = client.responses.create(model="text", input=many)
    url = f"/v1/responses/{response.id}/input_items"
    default = admin.get(url).json()
    assert len(default["data"]) == 20 and default["has_more"] is True
    widest = admin.get(url, params={"limit": 100, "order": "asc"}).json()
    assert len(widest["data"]) == 100 and widest["has_more"] is True and texts(widest["data"])[0] == "m0"


def test_messages_sent_with_string_content_are_listed_as_openai_lists_them(client: openai.OpenAI) -> None:
    sent: Any = [{"role": "user", "content": "hello"}, {"type": "message", "role": "developer", "content": "be brief"},
                 {"role": "assistant", "content": "hi"}, {"role": "user", "content": [{"type": "input_text",
                                                                                       "text": "x"}]}]  # fmt: skip
    response = client.responses.create(model="text", input=sent)
    messages = [i for i in client.responses.input_items.list(response.id, order="asc") if i.type == "message"]
    # a part is an SDK object (a plain string has no model_dump): the SDK parsed a list of parts
    shapes = [(i.role, [(p.type, p.model_dump()["text"]) for p in i.content], i.status) for i in messages]
    assert shapes == [
        ("user", [("input_text", "hello")], "completed"),
        ("developer", [("input_text", "be brief")], "completed"),
        ("assistant", [("output_text", "hi")], "completed"),
        ("user", [("input_text", "x")], "completed"),
    ]
    assert all(i.id.startswith("msg_") for i in messages)
