"""Fault injection in front of a fake provider: an ASGI wrapper that answers with each provider's real error bodies.

    faulty = Faults(FakeOpenAI().app)
    faulty.always = OPENAI_500                 # every request fails like this until `always = None`
    faulty.queue = [OPENAI_429]                # the next requests fail (None: that one passes), then `always`
    faulty.calls                               # requests that reached this instance (failed or not)
    faulty.arrivals                            # when each arrived (time.monotonic())

Several instances behind several loopback servers are several deployments the tests can tell apart.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send


@dataclass(frozen=True)
class Fault:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict[str, str])
    delay: float = 0.0
    """Seconds to wait before answering (a hanging upstream, with a deployment timeout below it)."""


def openai_error(status: int, message: str, type_: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


OPENAI_500 = Fault(500, openai_error(500, "The server had an error while processing your request. Sorry about that!",
                                     "server_error", None))  # fmt: skip
OPENAI_400 = Fault(400, openai_error(400, "Invalid value for 'temperature': must be at most 2.",
                                     "invalid_request_error", "invalid_value", "temperature"))  # fmt: skip
OPENAI_401 = Fault(401, openai_error(401, "Incorrect API key provided: sk-fake***.", "invalid_request_error",
                                     "invalid_api_key"))  # fmt: skip
OPENAI_429 = Fault(429, openai_error(429, "Rate limit reached for gpt-5-mini in organization org-x on requests per "
                                          "min (RPM): Limit 3, Used 3, Requested 1.", "requests",
                                     "rate_limit_exceeded"), {"retry-after": "1"})  # fmt: skip
OPENAI_CONTEXT = Fault(400, openai_error(400, "This model's maximum context length is 128000 tokens. However, your "
                                              "messages resulted in 130017 tokens. Please reduce the length of the "
                                              "messages.", "invalid_request_error", "context_length_exceeded",
                                         "messages"))  # fmt: skip
OPENAI_POLICY = Fault(400, openai_error(400, "Invalid prompt: your prompt was flagged as potentially violating our "
                                             "usage policy. Please try again with a different prompt: https://platform"
                                             ".openai.com/docs/guides/reasoning#advice-on-prompting",
                                        "invalid_request_error", "invalid_prompt"))  # fmt: skip
ANTHROPIC_CONTEXT = Fault(400, {"type": "error", "error": {"type": "invalid_request_error",
                                                           "message": "prompt is too long: 208310 tokens > 200000 "
                                                                      "maximum"},
                                "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"})  # fmt: skip
ANTHROPIC_POLICY = Fault(400, {"type": "error", "error": {"type": "invalid_request_error",
                                                          "message": "Output blocked by content filtering policy"},
                               "request_id": "req_011CSHoEeqs5C35K2UUqR7Fz"})  # fmt: skip
ANTHROPIC_OVERLOADED = Fault(529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
GEMINI_CONTEXT = Fault(400, {"error": {"code": 400, "message": "The input token count (1196265) exceeds the maximum "
                                                               "number of tokens allowed (1048576).",
                                       "status": "INVALID_ARGUMENT"}})  # fmt: skip


class Faults:
    """Wraps an ASGI app; injects `queue`d faults first, then `always`, else passes the request through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.calls = 0
        self.arrivals: list[float] = []
        self.always: Fault | None = None
        self.queue: list[Fault | None] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.calls += 1
        self.arrivals.append(time.monotonic())
        fault = self.queue.pop(0) if self.queue else self.always
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault.delay:
            await anyio.sleep(fault.delay)
        await JSONResponse(fault.body, fault.status, headers=fault.headers)(scope, receive, send)
