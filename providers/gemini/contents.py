"""OpenAI `messages` -> Gemini `systemInstruction` + `contents` (pure; image and file URLs arrive already fetched)."""

from __future__ import annotations

import base64
import binascii
import mimetypes
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson

from providers.gemini.schema import ToolNames
from providers.gemini.signatures import DUMMY_SIGNATURE, Step, needs_signatures

JSON = dict[str, Any]
InlineData = tuple[str, str]
"""(mimeType, base64 data)."""
StepLookup = Callable[[str], "Step | None"]

_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[^,;]*)*),(?P<data>.*)$", re.DOTALL)
_AUDIO = {"wav": "audio/wav", "mp3": "audio/mp3"}
_BASE64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_\r\n"
"""Standard and URL-safe base64 (Gemini takes both), line breaks allowed: what raw `file_data` may hold."""
RESPONSE_MEDIA = frozenset({"image/png", "image/jpeg", "image/webp", "application/pdf", "text/plain"})
"""What Gemini 3 takes inside `functionResponse.parts`; other media follow the responses in a user content."""


class MessageError(ValueError):
    """A message Gemini cannot be given; `param` names it the OpenAI way (`messages.[3].content.[1]`)."""

    def __init__(self, message: str, param: str, code: str = "invalid_value") -> None:
        super().__init__(message)
        self.param = param
        self.code = code


def http_image_urls(messages: list[JSON]) -> list[str]:
    """The http(s) image URLs in user and tool messages, in order, without duplicates (the gateway fetches them)."""
    return list(dict.fromkeys(url for _, url, file in http_urls(messages) if not file))


def http_file_urls(messages: list[JSON]) -> list[str]:
    """The http(s) URLs that user messages give as a `file` part's `file_data` (a Messages `document` url source
    becomes one), in order, without duplicates: the gateway fetches them like images."""
    return list(dict.fromkeys(url for _, url, file in http_urls(messages) if file))


def http_urls(messages: list[JSON]) -> Iterator[tuple[str, str, bool]]:
    """(part path, URL, whether a file's) of each http(s) URL the gateway fetches, in order: the path
    (`messages.[0].content.[1]`) is what an error about fetching that URL names."""
    for i, message in enumerate(messages if isinstance(messages, list) else ()):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "tool") or not isinstance(message.get("content"), list):
            continue
        for j, part in enumerate(message["content"]):
            kind = part.get("type") if isinstance(part, dict) else None
            url = _image_url(part) if kind == "image_url" else _file_data(part) if role == "user" else ""
            if url.startswith(("http://", "https://")):
                yield f"messages.[{i}].content.[{j}]", url, kind == "file"


def _file_data(part: Any) -> str:
    file = part.get("file") if isinstance(part, dict) and part.get("type") == "file" else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    data = file.get("file_data") if isinstance(file, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    return data if isinstance(data, str) else ""


def _image_url(part: JSON) -> str:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    return url if isinstance(url, str) else ""


def build_contents(
    messages: list[JSON],
    *,
    model: str,
    names: ToolNames,
    lookup: StepLookup,
    images: Mapping[str, InlineData],
    dummy_signatures: bool,
) -> tuple[list[str], list[JSON]]:
    """(system texts, contents) for `messages`.

    Raises:
        MessageError: a message Gemini cannot take, or a tool-call sequence OpenAI itself would refuse.
    """
    builder = _Builder(model, names, lookup, images, dummy_signatures)
    i = 0
    while i < len(messages):
        i = builder.add(messages, i)
    contents = builder.contents
    if not contents and builder.system:  # Gemini needs contents; a system-only request becomes a user turn
        contents, builder.system = [{"role": "user", "parts": [{"text": t} for t in builder.system]}], []
    if contents and contents[0]["role"] == "model" and any("functionCall" in p for p in contents[0]["parts"]):
        # a function-call turn must follow a user turn
        contents.insert(0, {"role": "user", "parts": [{"text": " "}]})
    return builder.system, contents


class _Builder:
    def __init__(self, model: str, names: ToolNames, lookup: StepLookup, images: Mapping[str, InlineData],
                 dummy_signatures: bool) -> None:  # fmt: skip
        self.model = model
        self.names = names
        self.lookup = lookup
        self.images = images
        self.dummy_signatures = dummy_signatures
        self.media_in_responses = needs_signatures(model)  # Gemini 3 and later
        self.system: list[str] = []
        self.contents: list[JSON] = []

    def add(self, messages: list[JSON], i: int) -> int:
        """Translate messages[i] (and the tool results answering it); return the next index."""
        message = messages[i]
        if not isinstance(message, dict):
            raise MessageError(f"messages[{i}] must be an object with a 'role'.", f"messages.[{i}]")
        role = message.get("role")
        if role in ("system", "developer"):
            self.system += [t for t in _texts(message.get("content"), f"messages.[{i}].content") if t]
        elif role == "user":
            self._append("user", self._user_parts(message.get("content"), i))
        elif role == "assistant":
            return self._assistant(messages, i)
        elif role == "tool":
            raise MessageError("Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                               "message with 'tool_calls'.", f"messages.[{i}].role")  # fmt: skip
        else:
            raise MessageError(f"messages[{i}] has role {role!r}, which Gemini models do not support; "
                               "use 'tools' and 'tool' messages instead.", f"messages.[{i}].role")  # fmt: skip
        return i + 1

    def _append(self, role: str, parts: list[JSON]) -> None:
        """Add a content; consecutive plain user turns, or a text-only model turn and the next model turn, merge
        (a function-call turn must follow a user turn; function responses always stay in their own content)."""
        if not parts:
            return
        last = self.contents[-1] if self.contents else None
        marker = "functionResponse" if role == "user" else "functionCall"
        if last is not None and last["role"] == role and not any(marker in p for p in last["parts"]):
            last["parts"] = [*last["parts"], *parts]
        else:
            self.contents.append({"role": role, "parts": parts})

    def _user_parts(self, content: Any, i: int) -> list[JSON]:
        if isinstance(content, str):
            return [{"text": content}] if content else []
        if content is None:
            return []
        if not isinstance(content, list):
            raise MessageError(f"messages[{i}].content must be a string or an array.", f"messages.[{i}].content")
        parts: list[JSON] = []
        for j, part in enumerate(content):  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
            converted = self._user_part(part, f"messages.[{i}].content.[{j}]")
            if converted is not None:
                parts.append(converted)
        return parts

    def _user_part(self, part: Any, param: str) -> JSON | None:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            text = _part_text(part, "text", param)  # pyright: ignore[reportArgumentType]
            return {"text": text} if text else None
        if kind == "image_url":
            return self._image(part, param)  # pyright: ignore[reportArgumentType]
        if kind == "input_audio":
            audio = part.get("input_audio") or {}  # pyright: ignore[reportOptionalMemberAccess]
            fmt = str(audio.get("format"))
            if fmt not in _AUDIO or not isinstance(audio.get("data"), str):
                raise MessageError(f"{param}: input_audio needs base64 'data' and a 'format' of wav or mp3.", param)
            return {"inlineData": {"mimeType": _AUDIO[fmt], "data": audio["data"]}}
        if kind == "file":
            return _file_part(part.get("file") or {}, param, self.images)  # pyright: ignore[reportOptionalMemberAccess]
        raise MessageError(f"{param}: content parts of type {kind!r} are not supported for Gemini models.", param)

    def _image(self, part: JSON, param: str) -> JSON:
        url = _image_url(part)
        if url.startswith(("http://", "https://")):
            mime, data = self.images[url]
        else:
            mime, data = parse_data_url(url, param)
        return {"inlineData": {"mimeType": mime, "data": data}}

    def _assistant(self, messages: list[JSON], i: int) -> int:
        message = messages[i]
        calls = [c for c in message.get("tool_calls") or () if isinstance(c, dict)]
        text = "".join(_texts(message.get("content"), f"messages.[{i}].content", refusals=True))
        step = self._step(calls)
        parts: list[JSON] = []
        if text:
            parts.append({"text": text, **_signed(step.text if step else None)})
        for j, call in enumerate(calls):
            parts.append(self._function_call(call, step, f"messages.[{i}].tool_calls.[{j}]"))
        if calls and self.dummy_signatures and "thoughtSignature" not in parts[-len(calls)]:
            parts[-len(calls)]["thoughtSignature"] = DUMMY_SIGNATURE
        self._append("model", parts)
        if not calls:
            return i + 1
        return self._tool_results(messages, i, calls, step)

    def _step(self, calls: list[JSON]) -> Step | None:
        for call in calls:
            step = self.lookup(str(call.get("id")))
            if step is not None and step.model == self.model:
                return step
        return None

    def _function_call(self, call: JSON, step: Step | None, param: str) -> JSON:
        function = call.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(function, dict) or not isinstance(name, str) or not name:
            raise MessageError(f"{param}.function.name is missing.", f"{param}.function.name")
        call_id = str(call.get("id") or "")
        part: JSON = {"functionCall": {"name": self.names.add(name), "args": _arguments(function.get("arguments"),
                                                                                         param)}}  # fmt: skip
        upstream_id = _upstream_id(step, call_id)
        if upstream_id:
            part["functionCall"]["id"] = upstream_id
        return {**part, **_signed(step.calls.get(call_id) if step else None)}

    def _tool_results(self, messages: list[JSON], i: int, calls: list[JSON], step: Step | None) -> int:
        results: dict[str, int] = {}
        j = i + 1
        while j < len(messages) and isinstance(messages[j], dict) and messages[j].get("role") == "tool":
            call_id = str(messages[j].get("tool_call_id"))
            if call_id not in {str(c.get("id")) for c in calls}:
                raise MessageError(f"messages[{j}] answers tool_call_id {call_id!r}, which the preceding assistant "
                                   "message did not call.", f"messages.[{j}].tool_call_id")  # fmt: skip
            results.setdefault(call_id, j)
            j += 1
        missing = [str(c.get("id")) for c in calls if str(c.get("id")) not in results]
        if missing:
            raise MessageError("An assistant message with 'tool_calls' must be followed by tool messages responding "
                               "to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
                               + ", ".join(missing), f"messages.[{i}].role")  # fmt: skip
        following: list[JSON] = []
        parts = [self._function_response(call, messages, results[str(call.get("id"))], step, following)
                 for call in calls]  # fmt: skip
        self.contents.append({"role": "user", "parts": parts})
        if following:  # media the function responses cannot carry: right after them, never dropped
            self.contents.append({"role": "user", "parts": following})
        return j

    def _function_response(
        self, call: JSON, messages: list[JSON], j: int, step: Step | None, following: list[JSON]
    ) -> JSON:
        call_id = str(call.get("id") or "")
        name = self.names.add(str(call["function"]["name"]))
        text, media = self._tool_content(messages[j].get("content"), f"messages.[{j}].content")
        response: JSON = {"name": name, "response": {"output": _tool_output(text)}}
        upstream_id = _upstream_id(step, call_id)
        if upstream_id:
            response["id"] = upstream_id
        inline = [m for m in media if self.media_in_responses and m["inlineData"]["mimeType"] in RESPONSE_MEDIA]
        if inline:
            response["parts"] = inline
        if rest := [m for m in media if m not in inline]:
            following += [{"text": f"The result of {name} (call {call_id}) also contains:"}, *rest]
        return {"functionResponse": response}

    def _tool_content(self, content: Any, param: str) -> tuple[str, list[JSON]]:
        """(text, inlineData parts) of a tool message's content."""
        if content is None or isinstance(content, str):
            return content or "", []
        if not isinstance(content, list):
            raise MessageError(f"{param} must be a string or an array of content parts.", param)
        texts: list[str] = []
        media: list[JSON] = []
        for k, part in enumerate(content):  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
            kind = part.get("type") if isinstance(part, dict) else None  # pyright: ignore[reportUnknownMemberType]
            if kind == "text":
                texts.append(_part_text(part, "text", f"{param}.[{k}]"))  # pyright: ignore[reportArgumentType]
            elif kind == "image_url":
                media.append(self._image(part, f"{param}.[{k}]"))  # pyright: ignore[reportUnknownArgumentType]
            else:
                raise MessageError(f"{param}.[{k}]: tool results for Gemini models take text and image_url parts, "
                                   f"got {kind!r}.", f"{param}.[{k}]")  # fmt: skip
        return "".join(texts), media


def _upstream_id(step: Step | None, call_id: str) -> str:
    if step is not None and call_id in step.upstream_ids:
        return step.upstream_ids[call_id]
    return call_id


def _signed(signature: str | None) -> JSON:
    return {"thoughtSignature": signature} if signature else {}


def _texts(content: Any, param: str, *, refusals: bool = False) -> list[str]:
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        raise MessageError(f"{param} must be a string or an array of text parts.", param)
    texts: list[str] = []
    for k, part in enumerate(content):  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
        kind = part.get("type") if isinstance(part, dict) else None  # pyright: ignore[reportUnknownMemberType]
        if kind == "text" or (refusals and kind == "refusal"):
            texts.append(_part_text(part, kind, f"{param}.[{k}]"))  # pyright: ignore[reportArgumentType]
        elif isinstance(part, dict) and isinstance(part.get("text"), str):  # pyright: ignore[reportUnknownMemberType]
            texts.append(part["text"])  # pyright: ignore[reportUnknownArgumentType]  (untyped parts: read as before)
        elif refusals and isinstance(part, dict) and isinstance(part.get("refusal"), str):  # pyright: ignore[reportUnknownMemberType]
            texts.append(part["refusal"])  # pyright: ignore[reportUnknownArgumentType]
    return texts


def _part_text(part: JSON, key: str, param: str) -> str:
    """A text (or refusal) part's string: anything else is refused naming it, never dropped as an empty part."""
    text = part.get(key)
    if not isinstance(text, str):
        raise MessageError(f"{param}.{key} must be a string.", f"{param}.{key}", "invalid_type")
    return text


def _arguments(arguments: Any, param: str) -> JSON:
    if arguments is None or arguments == "":
        return {}
    if isinstance(arguments, dict):
        return arguments  # pyright: ignore[reportUnknownVariableType]
    try:
        value = orjson.loads(arguments)
    except (orjson.JSONDecodeError, TypeError) as exc:
        where = f"{param}.function.arguments"
        raise MessageError(f"{where} is not valid JSON: {exc}", where) from exc
    if not isinstance(value, dict):
        raise MessageError(f"{param}.function.arguments must be a JSON object.", f"{param}.function.arguments")
    return value  # pyright: ignore[reportUnknownVariableType]


def _tool_output(text: str) -> Any:
    if text[:1] in ("{", "["):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return text


def parse_data_url(url: str, param: str, image: bool = True) -> InlineData:
    """(mimeType, base64 data) of a `data:` URL; `image`: an image's URL, which may also be an http(s) one (a file's
    `file_data` may not).

    Raises:
        MessageError: not a data URL with a media type, or undecodable base64.
    """
    match = _DATA_URL.match(url)
    if match is None or not match["mime"]:
        shown = url if len(url) <= 60 else url[:57] + "..."
        expected = "neither an http(s) URL nor a data URL with a media type (data:image/png;base64,...)" if image else (
            "not a data URL with a media type (data:application/pdf;base64,...)")  # fmt: skip
        raise MessageError(f"{param}: {shown!r} is {expected}.", param)
    data = match["data"]
    if ";base64" in match["params"]:
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MessageError(f"{param}: the data URL's base64 payload is invalid: {exc}", param) from exc
    else:
        data = base64.b64encode(unquote_to_bytes(data)).decode()
    return match["mime"], data


def _file_part(file: JSON, param: str, fetched: Mapping[str, InlineData]) -> JSON:
    """A file as inlineData: from a data URL, the bytes its http(s) URL held, or raw base64 (typed by its filename).
    A string that is none of these (another scheme's URL, not base64) is refused here, never sent as data.

    Raises:
        MessageError: no `file_data`, or one that is none of the above.
    """
    data = file.get("file_data")
    if not isinstance(data, str) or not data:
        raise MessageError(f"{param}: only files sent inline as 'file_data' are supported for Gemini models.", param)
    if data.startswith("data:"):
        mime, payload = parse_data_url(data, param, image=False)
    elif data.startswith(("http://", "https://")):
        mime, payload = fetched[data]
    elif data.isascii() and not data.encode().translate(None, _BASE64):
        filename = str(file.get("filename") or "")
        mime = "application/pdf" if filename.lower().endswith(".pdf") or not filename else _guess(filename)
        payload = data
    else:
        shown = data if len(data) <= 60 else data[:57] + "..."
        raise MessageError(f"{param}: {shown!r} is neither base64 data, a data URL with a media type "
                           "(data:application/pdf;base64,...) nor an http(s) URL.", param)  # fmt: skip
    return {"inlineData": {"mimeType": mime, "data": payload}}


def _guess(filename: str) -> str:
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"
