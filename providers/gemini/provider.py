"""The Gemini provider: HTTP to `generateContent` / `streamGenerateContent?alt=sse`, translation both ways."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from urllib.parse import quote

import orjson

from providers import _http
from providers.base import JSON, ChatRequest, Deployment, ProviderError, split_api_base, upstream_url
from providers.gemini.contents import InlineData, http_file_urls, http_image_urls, http_urls
from providers.gemini.embeddings import batch_bodies, embed_in_batches, embedding_texts
from providers.gemini.images import MAX_IMAGE_BYTES, ImageFetchError, fetch_images
from providers.gemini.request import Prepared, build_request
from providers.gemini.response import ResponseReader, StreamTranslator, completion, overloaded, parse_error
from providers.gemini.signatures import SignatureStore


class GeminiProvider:
    """Gemini (Developer API) models behind the OpenAI chat-completions contract."""

    name = "gemini"

    def __init__(
        self,
        pool: _http.HttpPool,
        *,
        signatures: SignatureStore | None = None,
        max_image_bytes: int = MAX_IMAGE_BYTES,
        image_timeout: float = 30.0,
    ) -> None:
        self._pool = pool
        self.signatures = signatures if signatures is not None else SignatureStore()
        self._max_image_bytes = max_image_bytes
        self._image_timeout = image_timeout

    async def complete(self, request: ChatRequest) -> JSON:
        deployment = request.deployment
        prepared = await self._prepare(request)
        url = self._url(deployment, "generateContent")
        try:
            async with _http.post(
                self._pool, deployment, url, orjson.dumps(prepared.body), self._headers(deployment),
                stream=False, parse_error=parse_error,
            ) as response:  # fmt: skip
                data = await _http.read_json(self.name, response, deployment.timeout)
        except ProviderError as exc:
            raise overloaded(exc) from exc.__cause__
        reader = ResponseReader(deployment.model, prepared.names)
        try:
            return completion(data, reader, deployment.model)
        finally:
            self._remember(reader)

    async def stream(self, request: ChatRequest) -> AsyncIterator[JSON]:
        deployment = request.deployment
        prepared = await self._prepare(request)
        url = self._url(deployment, "streamGenerateContent", "alt=sse")
        reader = ResponseReader(deployment.model, prepared.names)
        translator = StreamTranslator(reader, deployment.model)
        try:
            async with _http.post(
                self._pool, deployment, url, orjson.dumps(prepared.body), self._headers(deployment),
                stream=True, parse_error=parse_error,
            ) as response:  # fmt: skip
                async for _event, data in _http.iter_sse(self.name, response, deployment.read_timeout(True)):
                    for chunk in translator.feed(data):
                        yield chunk
            for chunk in translator.finish():
                yield chunk
        except ProviderError as exc:
            raise overloaded(exc) from exc.__cause__
        finally:
            self._remember(reader)

    async def embed(self, deployment: Deployment, body: JSON) -> JSON:
        """`:batchEmbedContents`, one request per input and at most 100 per call (`embeddings.py`), `dimensions` as
        `outputDimensionality`. Gemini reports no token usage, so none is returned (the hub estimates it)."""
        texts = embedding_texts(body)
        bodies = batch_bodies(deployment.model, texts, body.get("dimensions"))
        url = self._url(deployment, "batchEmbedContents")
        headers = self._headers(deployment)

        async def send(payload: JSON) -> object:
            try:
                async with _http.post(self._pool, deployment, url, orjson.dumps(payload), headers,
                                      stream=False, parse_error=parse_error) as response:  # fmt: skip
                    return await _http.read_json(self.name, response, deployment.timeout)
            except ProviderError as exc:
                raise overloaded(exc) from exc.__cause__

        return await embed_in_batches(send, deployment.model, bodies)

    async def _prepare(self, request: ChatRequest) -> Prepared:
        deployment = request.deployment
        params = dict(deployment.params)
        max_bytes = int(params.pop("max_image_bytes", self._max_image_bytes))
        messages = request.body.get("messages") or []
        images = await self._fetch(messages, max_bytes, deployment.fetch_private_urls)
        if "max_image_bytes" in deployment.params:
            deployment = _with_params(deployment, params)
        prepared = build_request(
            request.body, deployment, lookup=self.signatures.lookup, images=images, dropped=request.dropped
        )
        return prepared

    async def _fetch(self, messages: list[JSON], max_bytes: int, allow_private: bool) -> dict[str, InlineData]:
        """The messages' image and file URLs, fetched; a URL that cannot be used is a 400 naming the first part
        holding it (`messages.[0].content.[1]`), as the translation names a part it refuses.

        Raises:
            ImageFetchError: see `fetch_images`.
        """
        files = http_file_urls(messages)  # fetched like images: see images.py for why not sent as fileData
        urls = list(dict.fromkeys([*http_image_urls(messages), *files]))
        if not urls:
            return {}
        try:
            return await fetch_images(
                self._pool, urls, max_bytes=max_bytes, seconds=self._image_timeout, allow_private=allow_private,
                files=frozenset(files),
            )  # fmt: skip
        except ImageFetchError as exc:
            if not exc.request_wide:
                exc.param = next((path for path, url, _ in http_urls(messages) if url == exc.url), exc.param)
            raise

    def _remember(self, reader: ResponseReader) -> None:
        if reader.call_ids:
            self.signatures.remember(reader.step(), reader.call_ids)

    def _headers(self, deployment: Deployment) -> dict[str, str]:
        headers = {"Content-Type": "application/json", **deployment.headers}
        if deployment.api_key:
            headers["x-goog-api-key"] = deployment.api_key
        return headers

    def _url(self, deployment: Deployment, method: str, query: str = "") -> str:
        """`/v1beta` is added unless the api_base's path names a version; a query of the api_base stays the query."""
        base, _ = split_api_base(deployment.api_base)
        version = "" if base.endswith(("/v1beta", "/v1", "/v1alpha")) else "/v1beta"
        path = f"{version}/models/{quote(deployment.model, safe='-._')}:{method}"
        return upstream_url(deployment.api_base, path, query)


def _with_params(deployment: Deployment, params: JSON) -> Deployment:
    return replace(deployment, params=params)
