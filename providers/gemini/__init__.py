"""Gemini (`gemini/...` models): OpenAI chat completions translated to and from `generateContent`.

request.py     OpenAI body -> GenerateContentRequest (generation config, tools, tool_choice, thinking)
contents.py    OpenAI messages -> systemInstruction + contents (tool calls, tool results, images, signatures)
schema.py      JSON Schema -> Gemini's OpenAPI Schema subset; tool names Gemini accepts
response.py    GenerateContentResponse -> chat.completion / chat.completion.chunk; finish reasons, usage, errors
signatures.py  Gemini 3 thought signatures kept across turns, keyed by tool-call id
images.py      http(s) image and file URLs fetched and inlined
embeddings.py  OpenAI embeddings -> `batchEmbedContents` calls of at most 100 requests, answers joined in order
provider.py    GeminiProvider: the HTTP calls

`GeminiProvider` is loaded on first access (PEP 562), not with the package: the hub imports `signatures` at start for
its shared state, and a gateway with no `gemini/` model need not load the translation modules (issue 17, RSS).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from providers.gemini.provider import GeminiProvider

__all__ = ["GeminiProvider"]


def __getattr__(name: str) -> type[GeminiProvider]:
    if name == "GeminiProvider":
        from providers.gemini.provider import GeminiProvider

        return GeminiProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
