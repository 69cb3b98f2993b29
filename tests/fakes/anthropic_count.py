"""The fake Anthropic server (tests/fakes/anthropic_upstream.py) plus `POST /v1/messages/count_tokens`.

The count is the real API's shape, `{"input_tokens": N}`, with N = 3 + the number of words in the JSON of `system`,
`messages` and `tools` (deterministic, and unlike Toolhub's own estimate). Like the real endpoint it needs the key and
`anthropic-version`, takes `model` and `messages` and refuses what only /v1/messages takes (`max_tokens`, `stream`).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.anthropic_upstream import FakeAnthropic, Refusal, error

ACCEPTED = {"model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers", "context_management",
            "output_config"}  # fmt: skip


def counted(body: dict[str, Any]) -> int:
    return 3 + len(json.dumps([body.get("system"), body["messages"], body.get("tools")]).split())


class FakeAnthropicCounting(FakeAnthropic):
    """`counts` holds every count_tokens body received."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: list[dict[str, Any]] = []
        self.app.router.routes.append(Route("/v1/messages/count_tokens", self.count_tokens, methods=["POST"]))

    async def count_tokens(self, request: Request) -> Response:
        body = await request.json()
        self.counts.append(body)
        try:
            self._check_headers(request)
            for key in body:
                if key not in ACCEPTED:
                    raise Refusal(f"{key}: Extra inputs are not permitted")
            if not body.get("messages") or not isinstance(body.get("model"), str):
                raise Refusal("messages: Field required")
        except Refusal as exc:
            return error(exc.status, exc.kind, exc.message)
        if body["model"].startswith("error-"):
            return error(529, "overloaded_error", "Overloaded")
        return JSONResponse({"input_tokens": counted(body)})
