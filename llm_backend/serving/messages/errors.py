"""Anthropic's error body, ``{"type": "error", "error": {"type", "message"}}``, for the
service's errors (the catalogue's ``OpenAIError``): the type follows the HTTP status as
Anthropic's does (its API reference, "Errors"); the status stays the service's."""

from __future__ import annotations

from typing import Any

from ...errors import OpenAIError

TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def error_type(status: int) -> str:
    return TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")


def body(status: int, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type(status), "message": message}}


def error_body(error: OpenAIError) -> dict[str, Any]:
    return body(error.status, error.message)
