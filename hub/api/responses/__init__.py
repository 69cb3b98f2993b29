"""`/v1/responses`: OpenAI's Responses API, translated to and from Chat Completions for every provider.

`request` turns a Responses body into a Chat Completions body, `objects` builds the response object from a chat
completion, `events` turns a stream of chat.completion.chunk events into Responses events, `endpoint` serves it.
"""
