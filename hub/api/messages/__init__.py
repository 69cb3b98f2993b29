"""The Anthropic Messages API (`/v1/messages`) translated to and from Chat Completions."""
