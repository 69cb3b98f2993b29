"""A fake OpenAI server that speaks the Responses API (`/v1/responses`) besides Chat Completions (FakeOpenAI's).

It answers as api.openai.com does, with its own ids (`resp_fake...`), usage and stored responses:

    text        "You said: <last user text>"; streams it in 3 deltas
    tools       one function call `get_weather` {"city": "Paris"} (when `tools` are offered), else like `text`
    reasoning   a reasoning item with an encrypted_content (only with `include: ["reasoning.encrypted_content"]`)
    error-NNN   answers status NNN with OpenAI's error body
    midstream   two events, then an `error` event
    stalled     two events, then nothing for 60 s (a stream a shutdown or a client ends)
    unnamed     like `text`, its stream events with no `event:` lines (as some compatible servers send them)

Its Chat Completions side is FakeOpenAI's, plus two models:

    window-N    refuses a conversation of more than N messages as OpenAI does (400 context_length_exceeded)
    window-N-tool  the same, and calls a tool as `caller` does when it takes the conversation
    logprobs    "You said: ..." with a token log probability per word when `logprobs` is asked for
    caller      calls `exec_command` (Codex), `Read` (Claude Code) or the first tool once, then "Answer: <result>"

`previous_response_id` must name a response this server stored (`store` not false) for the same API key (`API_KEY`
or `OTHER_KEY`, two projects), else 400 as OpenAI answers;
an `item_reference` must name an output item of one (else 404); `DELETE /v1/responses/{id}` forgets one (`deleted`
lists the ids). Every request must carry the key. `requests` keeps every body received.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.openai_upstream import API_KEY, ERRORS, FakeOpenAI, error

JSON = dict[str, Any]
OTHER_KEY = "sk-fake-other-project"
"""A second API key the server takes, a project of its own: it sees none of the first key's stored responses."""
KEYS = frozenset({API_KEY, OTHER_KEY})
USAGE = {"input_tokens": 30, "input_tokens_details": {"cached_tokens": 10}, "output_tokens": 9,
         "output_tokens_details": {"reasoning_tokens": 4}, "total_tokens": 39}  # fmt: skip


class FakeResponses:
    """The fake server; `requests` are the Responses bodies received, `stored` the responses kept by id."""

    def __init__(self) -> None:
        self.chat = FakeOpenAI()
        self.requests: list[JSON] = []
        self.stored: dict[str, JSON] = {}
        self.deleted: list[str] = []
        self.owner: dict[str, str] = {}
        """The API key (project) each stored response belongs to: another key's id is unknown to it."""
        self._ids = itertools.count(1)
        routes = [Route("/v1/responses", self.create, methods=["POST"]),
                  Route("/v1/responses/{response_id}", self.delete, methods=["DELETE"]),
                  Route("/v1/chat/completions", self.chat_extras, methods=["POST"]),
                  *self.chat.app.routes]  # fmt: skip
        self.app = Starlette(routes=routes)

    async def chat_extras(self, request: Request) -> Response:
        body = await request.json()  # Starlette keeps it: FakeOpenAI reads it again
        model = str(body.get("model"))
        if not model.startswith("window-") and model not in ("logprobs", "caller"):
            return await self.chat.chat(request)
        self.chat.requests.append(body)
        if model.startswith("window-") and len(body["messages"]) > int(model.split("-")[1]):
            message = (f"This model's maximum context length is 100 tokens. However, your messages resulted in "
                       f"{40 * len(body['messages'])} tokens. Please reduce the length of the messages.")  # fmt: skip
            return error(400, message, "invalid_request_error", "context_length_exceeded", "messages")
        calls = model == "caller" or (model.endswith("-tool") and bool(body.get("tools")))
        message = caller_turn(body) if calls else {"role": "assistant", "content": said(body)}
        finish = "tool_calls" if message.get("tool_calls") else "stop"
        usage = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
        base = {"id": "chatcmpl-x", "created": 1, "model": model}
        if not body.get("stream"):
            logprobs = chat_logprobs(message["content"]) if body.get("logprobs") else None
            choice = {"index": 0, "finish_reason": finish, "logprobs": logprobs, "message": message}
            return JSONResponse({**base, "object": "chat.completion", "choices": [choice], "usage": usage})
        chunks = [*stream_deltas(message, bool(body.get("logprobs"))),
                  {"index": 0, "delta": {}, "finish_reason": finish, "logprobs": None}]  # fmt: skip
        base["object"] = "chat.completion.chunk"
        lines = [{**base, "choices": [c]} for c in chunks] + [{**base, "choices": [], "usage": usage}]
        data = "".join(f"data: {json.dumps(line)}\n\n" for line in lines) + "data: [DONE]\n\n"
        return Response(data, media_type="text/event-stream")

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_fake{next(self._ids):04d}"

    async def create(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        if key not in KEYS:
            return error(401, ERRORS[401][2], "invalid_request_error", "invalid_api_key")
        model = str(body.get("model"))
        if model.startswith("error-"):
            status = int(model.split("-")[1])
            return error(status, ERRORS[status][2], ERRORS[status][0], ERRORS[status][1])
        previous = body.get("previous_response_id")
        if previous is not None and self.owner.get(previous) != key:
            return error(400, f"Previous response with id '{previous}' not found.", "invalid_request_error",
                         "previous_response_not_found", "previous_response_id")  # fmt: skip
        if (missing := self.unknown_reference(body.get("input"), key)) is not None:
            return error(404, f"Item with id '{missing}' not found.", "invalid_request_error", None, "input")
        response = self.answer(body)
        if response["store"]:
            self.owner[response["id"]] = key
        if body.get("stream"):
            return StreamingResponse(self.events(response), media_type="text/event-stream")
        return JSONResponse(response)

    def unknown_reference(self, items: Any, key: str) -> str | None:
        mine = [r for i, r in self.stored.items() if self.owner.get(i) == key]
        known = {item["id"] for response in mine for item in response["output"]}
        for item in items if isinstance(items, list) else ():
            if item.get("type") == "item_reference" and item.get("id") not in known:
                return str(item.get("id"))
        return None

    async def delete(self, request: Request) -> Response:
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        response_id = request.path_params["response_id"]
        if key not in KEYS:
            return error(401, ERRORS[401][2], "invalid_request_error", "invalid_api_key")
        self.deleted.append(response_id)
        if self.owner.get(response_id) != key or self.stored.pop(response_id, None) is None:
            return error(404, f"Response with id '{response_id}' not found.", "invalid_request_error", None, None)
        return JSONResponse({"id": response_id, "object": "response", "deleted": True})

    def answer(self, body: JSON) -> JSON:
        response = {"id": self.new_id("resp"), "object": "response", "created_at": 1765000000, "status": "completed",
                    "error": None, "incomplete_details": None, "model": body["model"], "output": self.output(body),
                    "previous_response_id": body.get("previous_response_id"), "store": body.get("store", True),
                    "usage": USAGE, "parallel_tool_calls": True, "tool_choice": "auto", "tools": body.get("tools", []),
                    "text": {"format": {"type": "text"}}, "metadata": body.get("metadata") or {}}  # fmt: skip
        if response["store"]:
            self.stored[response["id"]] = response
        return response

    def output(self, body: JSON) -> list[JSON]:
        out: list[JSON] = []
        if body["model"] == "reasoning" and "reasoning.encrypted_content" in (body.get("include") or ()):
            out.append({"id": self.new_id("rs"), "type": "reasoning", "summary": [],
                        "encrypted_content": "gAAAA-fake-encrypted"})  # fmt: skip
        if body["model"] == "tools" and body.get("tools"):
            call = {"call_id": self.new_id("call"), "name": "get_weather", "arguments": '{"city": "Paris"}'}
            out.append({"id": self.new_id("fc"), "type": "function_call", "status": "completed", **call})
            return out
        text = f"You said: {last_text(body.get('input'))}"
        out.append({"id": self.new_id("msg"), "type": "message", "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]})  # fmt: skip
        return out

    async def events(self, response: JSON) -> AsyncIterator[bytes]:
        numbers = itertools.count()

        def event(kind: str, **fields: Any) -> bytes:
            data = {"type": kind, "sequence_number": next(numbers), **fields}
            named = "" if response["model"] == "unnamed" else f"event: {kind}\n"
            return f"{named}data: {json.dumps(data)}\n\n".encode()

        shell = {**response, "status": "in_progress", "output": [], "usage": None}
        yield event("response.created", response=shell)
        yield event("response.in_progress", response=shell)
        if response["model"] == "midstream":
            yield event("error", code="server_error", message="The server had an error.", param=None)
            return
        if response["model"] == "stalled":
            await anyio.sleep(60)
        for index, item in enumerate(response["output"]):
            for chunk in item_events(item, index):
                yield event(chunk.pop("type"), **chunk)
        yield event("response.completed", response=response)


def item_events(item: JSON, index: int) -> list[JSON]:
    """The events that stream one output item."""
    at = {"item_id": item["id"], "output_index": index}
    if item["type"] != "message":
        return [{"type": "response.output_item.added", "output_index": index, "item": item},
                {"type": "response.output_item.done", "output_index": index, "item": item}]  # fmt: skip
    text = item["content"][0]["text"]
    empty = {**item, "status": "in_progress", "content": []}
    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    thirds = [text[: len(text) // 3], text[len(text) // 3 : 2 * len(text) // 3], text[2 * len(text) // 3 :]]
    return [
        {"type": "response.output_item.added", "output_index": index, "item": empty},
        {"type": "response.content_part.added", **at, "content_index": 0, "part": part},
        *({"type": "response.output_text.delta", **at, "content_index": 0, "delta": d, "logprobs": []} for d in thirds),
        {"type": "response.output_text.done", **at, "content_index": 0, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **at, "content_index": 0, "part": item["content"][0]},
        {"type": "response.output_item.done", "output_index": index, "item": item},
    ]


def said(body: JSON) -> str:
    content = body["messages"][-1]["content"]
    return f"You said: {content if isinstance(content, str) else ''.join(p.get('text', '') for p in content)}"


def caller_turn(body: JSON) -> JSON:
    """The `caller` model: calls one tool once, then quotes what it answered: Codex's `exec_command` with
    {"cmd": "echo toolhub-ok"}, Claude Code's `Read` with the first absolute path in the user's text, else the
    first tool offered with {"cmd": ...}."""
    results = [m for m in body["messages"] if m.get("role") == "tool"]
    if results:
        return {"role": "assistant", "content": f"Answer: {results[-1]['content']}"}
    names = [t["function"]["name"] for t in body.get("tools") or ()]
    if "Read" in names and "exec_command" not in names:
        name, arguments = "Read", {"file_path": first_path(body)}
    else:
        name, arguments = ("exec_command" if "exec_command" in names else names[0]), {"cmd": "echo toolhub-ok"}
    call = {"id": f"call_caller_{len(body['messages'])}", "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments)}}  # fmt: skip
    return {"role": "assistant", "content": None, "tool_calls": [call]}


def first_path(body: JSON) -> str:
    """The first absolute path in the user messages' text."""
    for message in body["messages"]:
        content = message.get("content")
        text = content if isinstance(content, str) else json.dumps(content)
        if message.get("role") == "user" and (found := re.search(r"(/[\w./-]+\.txt)", text)):
            return found.group(1)
    return "/nonexistent.txt"


def stream_deltas(message: JSON, logprobs: bool) -> list[JSON]:
    """A message as stream choices: a word a chunk (with its logprobs if asked), or its tool call in two pieces."""
    if message.get("tool_calls"):
        call = message["tool_calls"][0]
        arguments = call["function"]["arguments"]
        first = {"index": 0, "id": call["id"], "type": "function",
                 "function": {"name": call["function"]["name"], "arguments": arguments[:4]}}  # fmt: skip
        rest = {"index": 0, "function": {"arguments": arguments[4:]}}
        return [{"index": 0, "delta": {"role": "assistant", "tool_calls": [first]}, "finish_reason": None},
                {"index": 0, "delta": {"tool_calls": [rest]}, "finish_reason": None}]  # fmt: skip
    text = message["content"]
    words = [w + " " for w in text.split(" ")[:-1]] + text.split(" ")[-1:]
    return [{"index": 0, "delta": {"content": w}, "finish_reason": None,
             "logprobs": chat_logprobs(w) if logprobs else None} for w in words]  # fmt: skip


def chat_logprobs(text: str) -> JSON:
    """Chat Completions `logprobs` for `text`: one token a word (-0.5 each), with one alternative."""
    words = [w + " " for w in text.split(" ")[:-1]] + text.split(" ")[-1:]
    tokens = [{"token": w, "bytes": list(w.encode()), "logprob": -0.5} for w in words if w]
    tokens = [{**t, "top_logprobs": [dict(t)]} for t in tokens]
    return {"content": tokens, "refusal": None}


def last_text(value: Any) -> str:
    """The last user text of an `input` string or item list."""
    if isinstance(value, str):
        return value
    for item in reversed(value or []):
        if item.get("role") == "user":
            content = item.get("content")
            return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)
    return "(no user text)"
