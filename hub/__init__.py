"""Toolhub: an MCP-native tool hub and OpenAI-compatible LLM gateway."""

__version__ = "0.1.0"
