"""The OpenAI-compatible gateway: request reading, model routing, the chat endpoint and stream framing."""
