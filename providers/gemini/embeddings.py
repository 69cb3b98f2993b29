"""OpenAI embeddings requests -> Gemini `:batchEmbedContents` calls, and their answers back (one list, input order).

Gemini refuses a batch of more than `MAX_BATCH_REQUESTS` requests (400 INVALID_ARGUMENT "BatchEmbedContentsRequest.
requests: at most 100 requests can be in one batch"), while OpenAI's API, and so its clients, send up to 2048 inputs
at once. The inputs are therefore sent in batches, `CONCURRENT_BATCHES` at a time; the first batch that fails fails the
whole request with its own error (no partial answer), and the batches still running are cancelled.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from providers._fanout import gather_limited
from providers.base import JSON, ProviderError, bad_response

MAX_BATCH_REQUESTS = 100
"""Gemini's cap on the requests of one `batchEmbedContents` call."""
CONCURRENT_BATCHES = 4
"""Batches of one embeddings request in flight at once: a 2048-input request is 21 batches, sent in ~6 waves
rather than 21 at once (which would meet the per-minute request limit sooner)."""

SendBatch = Callable[[JSON], Awaitable[object]]
"""Posts one `batchEmbedContents` body and returns the parsed answer; raises ProviderError."""


def embedding_texts(body: JSON) -> list[str]:
    """The texts to embed. Raises ProviderError (400, `input`) for token arrays: Gemini embeds text only."""
    inputs: Any = body.get("input") or []
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or not all(isinstance(text, str) for text in inputs):  # pyright: ignore[reportUnknownVariableType]
        raise ProviderError("Gemini embeds text only: send 'input' as a string or a list of strings, not tokens.",
                            status_code=400, provider="gemini", type="invalid_request_error",
                            code="invalid_value", param="input")  # fmt: skip
    return inputs  # pyright: ignore[reportUnknownVariableType]


def batch_bodies(model: str, texts: list[str], dimensions: object = None) -> list[JSON]:
    """The `batchEmbedContents` bodies for `texts`, in order, each of at most `MAX_BATCH_REQUESTS` requests."""
    one: JSON = {"model": f"models/{model}"}
    if dimensions is not None:
        one["outputDimensionality"] = dimensions
    requests = [{**one, "content": {"parts": [{"text": text}]}} for text in texts]
    return [{"requests": requests[i : i + MAX_BATCH_REQUESTS]} for i in range(0, len(requests), MAX_BATCH_REQUESTS)]


async def embed_in_batches(send: SendBatch, model: str, bodies: list[JSON]) -> JSON:
    """OpenAI's embeddings `list` for the batches' answers joined in input order (indexes count across batches).

    Raises:
        ProviderError: the first batch that failed, or answered with the wrong number of embeddings.
    """

    async def one(body: JSON) -> list[object]:
        return _vectors(await send(body), len(body["requests"]))

    vectors = await gather_limited(one, bodies, limit=CONCURRENT_BATCHES, stop_on=ProviderError)
    joined = [vector for batch in vectors for vector in batch]
    data = [{"object": "embedding", "index": i, "embedding": vector} for i, vector in enumerate(joined)]
    return {"object": "list", "data": data, "model": model}


def _vectors(data: object, count: int) -> list[object]:
    """The `values` of each embedding of one batch's answer. Raises ProviderError (502) unless there are `count`."""
    embeddings = data.get("embeddings") if isinstance(data, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    if not isinstance(embeddings, list) or len(embeddings) != count:  # pyright: ignore[reportUnknownArgumentType]
        raise bad_response("gemini", f"gemini sent an unexpected embeddings body: {str(data)[:200]}")
    return [(e.get("values") if isinstance(e, dict) else None) or [] for e in embeddings]  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
