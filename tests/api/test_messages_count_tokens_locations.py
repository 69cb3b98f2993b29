"""/v1/messages/count_tokens names the client's own blocks in an error about the translated chat body, as
/v1/messages does (hub/api/locations.py): a system prompt shifts the chat messages by one."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from hub.config import parse_config
from hub.errors import BadRequest
from hub.server import build_app

MASTER_KEY = "sk-toolhub-count-locations"
MODELS = [{"model_name": "text", "litellm_params": {"model": "openai/x", "api_key": "k",
                                                    "api_base": "http://127.0.0.1:9/v1"}}]  # fmt: skip
TEXTS: Any = [{"type": "text", "text": "hi"}, {"type": "text", "text": "x"}]
BODY: Any = {"model": "text", "system": "Be brief.", "messages": [{"role": "user", "content": TEXTS}]}


@pytest.mark.anyio
async def test_an_error_about_the_chat_body_names_the_clients_block(monkeypatch: pytest.MonkeyPatch) -> None:
    async def refused(chat: Any, *args: Any) -> Any:
        assert chat["messages"][1]["content"][1]["text"] == "x"  # behind the system prompt
        raise BadRequest("messages.[1].content.[1].text: refused", param="messages.[1].content.[1].text")

    monkeypatch.setattr("hub.api.messages.count_tokens.prepare_tool_loop", refused)
    app = build_app(parse_config({"model_list": MODELS, "general_settings": {"master_key": MASTER_KEY}}, {}))
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            response = await client.post("/v1/messages/count_tokens", json=BODY, headers={"x-api-key": MASTER_KEY})
    assert response.status_code == 400
    error = {"type": "invalid_request_error", "message": "messages.0.content.1.text: refused"}
    assert response.json() == {"type": "error", "error": error}
