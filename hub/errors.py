"""Errors the gateway answers with, always in the API's own shape.

HubError                      an error the gateway itself raises, rendered as OpenAI {"error": {...}}
 ├── BadRequest               400 invalid_request_error (invalid JSON, schema, parameters, json_too_deep)
 ├── AuthenticationError      401 (missing or wrong key)
 ├── PermissionDenied         403 (key not allowed this model or tool; a key limited to some models also
 │                                 gets it for unknown models, so 403-vs-404 reveals nothing)
 ├── NotFound                 404 (unknown model: code model_not_found)
 ├── PayloadTooLarge          413 (body over general_settings.max_request_size_mb)
 ├── UnsupportedMediaType     415 (a body that is not the content type an endpoint takes)
 ├── MisdirectedRequest       421 (a Host the MCP endpoints do not serve: DNS-rebinding protection)
 ├── RateLimited              429 (budget or rate limit; carries retry-after)
 └── ServiceUnavailable       503 (a model or server that is configured but cannot be used now)
providers.base.ProviderError  an upstream failure; its status is decided by the provider layer
                              (4xx passed through, 5xx and connection failures 502, timeouts 504,
                              Anthropic 529 and Gemini 503 UNAVAILABLE 503); 400 unsupported_parameter for a
                              parameter dropped under drop_params: false (providers.base.drop_param)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.responses import Response

from hub.gateway import sse
from providers.base import ProviderError


class HubError(Exception):
    """A failure the gateway reports to its client."""

    status_code = 500
    type = "server_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param
        self.headers = dict(headers or {})

    def to_openai(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class BadRequest(HubError):
    status_code = 400
    type = "invalid_request_error"


class AuthenticationError(HubError):
    status_code = 401
    type = "authentication_error"


class PermissionDenied(HubError):
    status_code = 403
    type = "permission_error"


class NotFound(HubError):
    status_code = 404
    type = "invalid_request_error"


class PayloadTooLarge(HubError):
    status_code = 413
    type = "invalid_request_error"


class UnsupportedMediaType(HubError):
    status_code = 415
    type = "invalid_request_error"


class MisdirectedRequest(HubError):
    status_code = 421
    type = "invalid_request_error"


class RateLimited(HubError):
    status_code = 429
    type = "rate_limit_error"


class ServiceUnavailable(HubError):
    status_code = 503
    type = "service_unavailable"


def json_response(body: Any, status_code: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, headers=headers, media_type="application/json")


def http_error_response(exc: HTTPException, method: str, path: str) -> Response:
    """Starlette's `HTTPException` (an unknown path, a method a route does not take) in OpenAI's error shape."""
    code = "not_found" if exc.status_code == 404 else None
    error = {"message": f"{exc.detail}: {method} {path}", "type": "invalid_request_error", "param": None, "code": code}
    return json_response({"error": error}, exc.status_code, exc.headers)


def error_response(error: HubError | ProviderError) -> Response:
    """Render an error as OpenAI's `{"error": {...}}` with its status and headers."""
    headers = dict(error.headers)
    if isinstance(error, ServiceUnavailable):
        headers.setdefault("x-should-retry", "false")  # a config problem does not heal by retrying
    return json_response(error.to_openai(), error.status_code, headers)


def stream_error_event(error: HubError | ProviderError) -> bytes:
    """The last event of a stream that failed after it started."""
    return sse.event(error.to_openai())
