"""Gemini (`gemini/...` models): OpenAI chat completions translated to and from `generateContent`.

request.py     OpenAI body -> GenerateContentRequest (generation config, tools, tool_choice, thinking)
contents.py    OpenAI messages -> systemInstruction + contents (tool calls, tool results, images, signatures)
schema.py      JSON Schema -> Gemini's OpenAPI Schema subset; tool names Gemini accepts
response.py    GenerateContentResponse -> chat.completion / chat.completion.chunk; finish reasons, usage, errors
signatures.py  Gemini 3 thought signatures kept across turns, keyed by tool-call id
images.py      http(s) image URLs fetched and inlined
provider.py    GeminiProvider: the HTTP calls
"""

from providers.gemini.provider import GeminiProvider

__all__ = ["GeminiProvider"]
