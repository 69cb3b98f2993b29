"""The provider contract.

The gateway speaks OpenAI Chat Completions to its clients, and every provider module speaks it to the hub as well:
a `ChatRequest` carries the OpenAI request body (a dict, as parsed from the client), a `complete()` answers with an
OpenAI `chat.completion` dict, and `stream()` yields OpenAI `chat.completion.chunk` dicts. We chose OpenAI shapes over
neutral dataclasses for three reasons:

* the OpenAI-compatible path (OpenAI, vLLM, Ollama) needs no translation at all, and it is the hot path;
* every client of `/v1` and the tool loop already think in these shapes, so nothing is converted twice;
* each translating module (`anthropic`, `gemini`) owns one mapping in each direction, OpenAI <-> its wire format,
  and the OpenAI chunk contract below is the single place where streaming rules are written down.

Stream contract (what every provider's `stream()` must yield; the hub relies on it):

* chunks follow the OpenAI wire rules: one `id`/`created`/`model` per stream, `delta.role` in the first chunk,
  tool-call deltas with a 0-based contiguous `index` and `id`/`type`/`function.name` only in a call's first fragment,
  `finish_reason` only on the last choice chunk;
* a provider always ends with one usage chunk (`"choices": []` and `"usage": {...}`) when the upstream reports usage,
  whether or not the client asked for `stream_options.include_usage`; the hub records it and drops it when the client
  did not ask;
* failures raise `ProviderError`, before the first chunk or after it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

JSON = dict[str, Any]
logger = logging.getLogger("toolhub.providers")


@dataclass(frozen=True, slots=True)
class Deployment:
    """One upstream model that an alias routes to, with everything needed to call it."""

    provider: str
    """Provider key, e.g. `openai`, `anthropic`, `gemini`."""
    model: str
    """The upstream model name, e.g. `gpt-5-mini-2025-08-07`."""
    api_base: str
    api_key: str | None = field(default=None, repr=False, compare=False)
    timeout: float = 600.0
    """Seconds for the whole non-streaming call (and between two stream events unless `stream_timeout` is set)."""
    stream_timeout: float | None = None
    """Seconds to wait between two stream events (LiteLLM's `stream_timeout`)."""
    connect_timeout: float = 10.0
    max_retries: int = 0
    drop_params: bool = True
    """Drop request parameters the upstream model rejects (True) or refuse them with a 400 (False)."""
    params: Mapping[str, Any] = field(default_factory=dict[str, Any])
    """Default request parameters from the config (`litellm_params` extras), applied under the client's own."""
    headers: Mapping[str, str] = field(default_factory=dict[str, str])
    """Extra headers sent upstream (`litellm_params.extra_headers`)."""
    fetch_private_urls: bool = False
    """Let the gateway fetch image URLs (for providers that need images inline) that resolve to loopback or private
    addresses; off by default, so that a client cannot make the gateway read its own network."""

    def read_timeout(self, stream: bool) -> float:
        """The timeout that applies: the whole call, or (streams) the wait between two events."""
        return (self.stream_timeout or self.timeout) if stream else self.timeout


@functools.lru_cache(maxsize=1024)
def split_api_base(api_base: str) -> tuple[str, str]:
    """`api_base` cut where an endpoint's path goes: (scheme, authority and path without a trailing `/`; its query).

    An api_base may carry a query (Azure's `?api-version=...`, a proxy's `?token=...`) that the upstream expects on
    every call: the path goes before it. Split where `urllib.parse.urlsplit` (and so the upstream client) splits, at
    the first `?`, a fragment dropped."""
    base, _, query = api_base.partition("#")[0].partition("?")
    return base.rstrip("/"), query


@functools.lru_cache(maxsize=1024)
def upstream_url(api_base: str, path: str, query: str = "") -> str:
    """The URL of the endpoint `path` (`/chat/completions`) under `api_base`: the path joined to the api_base's path,
    then the api_base's query with `query` (the call's own, `alt=sse`) after it.

    Cached whole: a config has a handful of (api_base, endpoint) pairs and every upstream call asks. A call is a cache
    hit, ~0.05 us more than the strip-and-concatenate it replaced (timeit, ~0.2 us in all); the join itself ~0.3 us."""
    base, base_query = split_api_base(api_base)
    if base_query:
        query = f"{base_query}&{query}" if query else base_query
    return f"{base}{path}?{query}" if query else base + path


@dataclass(slots=True)
class ChatRequest:
    """An OpenAI chat-completions request on its way to one deployment."""

    body: JSON
    """The client's OpenAI request body; `model` is already the upstream model name."""
    deployment: Deployment
    request_id: str = ""
    dropped: list[str] = field(default_factory=list[str])
    """Parameters of `body` the provider left out for this deployment (see `drop_param`), in the order dropped; the
    gateway reports them in the `x-toolhub-dropped-params` response header."""


class ProviderError(Exception):
    """An upstream call failed; carries what the gateway needs to answer in OpenAI's error shape.

    `status_code` is the status the *gateway* should answer with (upstream 4xx are passed through, upstream 5xx
    and connection failures become 502, timeouts 504). `upstream_status` is what the upstream said, if anything.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        provider: str,
        type: str = "upstream_error",
        code: str | None = None,
        param: str | None = None,
        upstream_status: int | None = None,
        retryable: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.provider = provider
        self.type = type
        self.code = code
        self.param = param
        self.upstream_status = upstream_status
        self.retryable = retryable
        self.headers = dict(headers or {})

    def to_openai(self) -> JSON:
        """The error as OpenAI's `{"error": {...}}` body."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


OPENAI_PARAMS = frozenset(
    """model messages stream stream_options tools tool_choice parallel_tool_calls response_format max_completion_tokens
    max_tokens reasoning_effort verbosity temperature top_p stop n seed presence_penalty frequency_penalty logit_bias
    logprobs top_logprobs user safety_identifier prompt_cache_key prompt_cache_options metadata store service_tier
    prediction modalities audio web_search_options functions function_call""".split()
)
"""Top-level fields api.openai.com accepts. Others (`num_ctx`, `top_k`...) are for other servers: a provider that
cannot use one drops it with `drop_param`."""


def drop_unknown_params(body: JSON, native: frozenset[str], deployment: Deployment, dropped: list[str]) -> None:
    """`drop_param` every field of the client's `body` that is neither an OpenAI parameter nor in `native` (the
    provider's own extras it understands)."""
    for name in sorted(body.keys() - OPENAI_PARAMS - native):
        drop_param(deployment, name, f"not an OpenAI parameter, and {deployment.provider} does not take it", dropped)


def bad_response(provider: str, message: str) -> ProviderError:
    """The 502 `upstream_bad_response`: the upstream answered, but with something the gateway cannot take."""
    return ProviderError(message, status_code=502, provider=provider, code="upstream_bad_response")


def bad_request(provider: str, message: str, param: str | None = None, code: str = "invalid_value") -> ProviderError:
    """A 400 in OpenAI's shape: a request `provider` cannot be given, refused before anything is sent upstream."""
    return ProviderError(
        message, status_code=400, provider=provider, type="invalid_request_error", code=code, param=param
    )


def number_param(provider: str, body: JSON, name: str, kind: type | tuple[type, ...] = (int, float)) -> Any:
    """`body[name]` if it is a number of `kind` (or absent: None); anything else, `true` included (Python's bool is
    an int), is a 400 `invalid_type` naming it."""
    value = body.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, kind)):
        expected = "an integer" if kind is int else "a number"
        raise bad_request(
            provider, f"Invalid type for '{name}': expected {expected}, got {value!r}.", name, "invalid_type"
        )
    return value


def read_usage(provider: str, convert: Callable[[JSON], JSON], raw: JSON) -> JSON:
    """`convert(raw)`: a provider's usage as OpenAI's.

    Raises:
        ProviderError: 502 `upstream_bad_response`, counts that are no numbers or details that are no objects (the
            hub refuses negative ones).
    """
    try:
        return convert(raw)
    except (TypeError, ValueError, AttributeError):
        raise bad_response(provider, f"{provider} sent usage the gateway cannot read: {repr(raw)[:200]}") from None


def drop_param(deployment: Deployment, name: str, reason: str, dropped: list[str]) -> None:
    """The one way a provider leaves a client parameter out: note `name` in `dropped` (and a DEBUG log line), or,
    with `drop_params: false`, refuse the request.

    Raises:
        ProviderError: 400 `unsupported_parameter` naming `name`, when the deployment does not drop parameters.
    """
    if not deployment.drop_params:
        raise ProviderError(
            f"Model {deployment.model} does not support the parameter '{name}': {reason}. Remove it, or set "
            "drop_params: true for this model in the config to have the gateway drop it.",
            status_code=400,
            provider=deployment.provider,
            type="invalid_request_error",
            code="unsupported_parameter",
            param=name,
        )
    logger.debug("parameter %r dropped for %s/%s: %s", name, deployment.provider, deployment.model, reason)
    if name not in dropped:
        dropped.append(name)


class Embedder(Protocol):
    """A provider that can also embed (OpenAI-compatible and Gemini); the hub checks with `hasattr(p, "embed")`."""

    async def embed(self, deployment: Deployment, body: JSON) -> JSON:
        """Answer an OpenAI embeddings body (`input` a list of strings or of token arrays; `dimensions`, `user`)
        with an OpenAI embeddings response: float vectors in input order, and `usage` when the upstream reports it.

        Raises:
            ProviderError: the upstream refused, failed or timed out, or cannot take this input.
        """
        ...


class Provider(Protocol):
    """One upstream wire API. Instances are shared by all requests and own no per-request state."""

    name: str

    async def complete(self, request: ChatRequest) -> JSON:
        """Answer a non-streaming request with an OpenAI `chat.completion` dict.

        Raises:
            ProviderError: the upstream refused, failed or timed out.
        """
        ...

    def stream(self, request: ChatRequest) -> AsyncIterator[JSON]:
        """Yield OpenAI `chat.completion.chunk` dicts as the upstream produces them (see the module docstring).

        Raises:
            ProviderError: the upstream refused, failed or timed out, before or during the stream.
        """
        ...
