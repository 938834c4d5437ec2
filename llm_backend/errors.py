"""Every error the service returns, in OpenAI's shape, from one place.

``{"error": {"message": str, "type": str, "param": str | None, "code": str | None}}`` with
the status OpenAI uses. Connexion's own problems (validation, auth, routing) are translated
here too, so clients only ever see one error format.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from connexion.exceptions import (
    BadRequestProblem,
    ProblemException,
    UnsupportedMediaTypeProblem,
)
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from starlette.exceptions import HTTPException

log = logging.getLogger(__name__)

_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
}


class OpenAIError(Exception):
    """An error to answer with; raise it anywhere below a controller."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type or _TYPE_BY_STATUS.get(status, "server_error")
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def __repr__(self) -> str:
        return f"OpenAIError({self.status}, {self.message!r}, code={self.code!r})"


def bad_request(message: str, param: str | None = None, code: str | None = None) -> OpenAIError:
    return OpenAIError(400, message, param=param, code=code)


def model_not_found(model_id: str) -> OpenAIError:
    return OpenAIError(
        404,
        f"The model `{model_id}` does not exist or you do not have access to it.",
        param="model",
        code="model_not_found",
    )


def not_implemented(operation_id: str) -> OpenAIError:
    return OpenAIError(
        501,
        f"The operation '{operation_id}' is not implemented by this server.",
        code="not_implemented",
        type="invalid_request_error",
    )


def upstream_unreachable(upstream: str) -> OpenAIError:
    # Names the upstream, never its URL or key: the message reaches clients and logs.
    return OpenAIError(
        502,
        f"The upstream API '{upstream}' could not be reached. Please retry shortly.",
        code="upstream_unreachable",
        type="server_error",
    )


def upstream_timeout(upstream: str, seconds: float) -> OpenAIError:
    return OpenAIError(
        504,
        f"The upstream API '{upstream}' did not answer within {seconds:g} seconds.",
        code="upstream_timeout",
        type="server_error",
    )


def to_response(error: OpenAIError) -> ConnexionResponse:
    return ConnexionResponse(
        status_code=error.status,
        mimetype="application/json",
        content_type="application/json",
        body=json.dumps(error.body()).encode(),
        headers=error.headers,
    )


# Connexion's parameter validator names the parameter inside its message.
_PARAM_IN_DETAIL = re.compile(r"(?:parameter|property) '([^']+)'|- '([^']+)'$")


def _param_from_detail(detail: str) -> str | None:
    match = _PARAM_IN_DETAIL.search(detail or "")
    return (match.group(1) or match.group(2)) if match else None


def from_problem(exc: ProblemException) -> OpenAIError:
    """Translate a Connexion problem (RFC 7807) into an OpenAI error."""
    detail = exc.detail or exc.title or "Request failed."
    if exc.status == 401:
        return OpenAIError(
            401,
            "Incorrect API key provided. You can find your API key in your account settings.",
            code="invalid_api_key",
        )
    if exc.status == 403:
        return OpenAIError(403, "You are not allowed to perform this request.", code="forbidden")
    if isinstance(exc, (BadRequestProblem, UnsupportedMediaTypeProblem)) or exc.status in (400, 415):
        return OpenAIError(400, detail, param=_param_from_detail(detail))
    if exc.status == 404:
        return OpenAIError(404, detail, code="not_found")
    if exc.status == 405:
        return OpenAIError(405, detail, code="method_not_allowed")
    if exc.status >= 500:
        return OpenAIError(exc.status, "The server had an error while processing your request.")
    return OpenAIError(exc.status, detail)


def from_http_exception(exc: HTTPException) -> OpenAIError:
    if exc.status_code == 404:
        return OpenAIError(404, "Unknown request URL. Please check the URL and method.", code="unknown_url")
    if exc.status_code == 405:
        return OpenAIError(
            405, "Method not allowed for this URL. Please check the URL and method.", code="method_not_allowed"
        )
    return OpenAIError(exc.status_code, str(exc.detail))


def answered(exc: Exception) -> OpenAIError:
    """The error to answer a request that raised ``exc`` with, logged: a server-side
    OpenAIError by its message; anything else with its traceback (with the request id
    bound by the logging middleware), while the client learns nothing about internals."""
    if isinstance(exc, OpenAIError):
        if exc.status >= 500:
            log.error("request failed: %s", exc.message)
        return exc
    log.exception("unhandled error", exc_info=exc)
    return OpenAIError(500, "The server had an error while processing your request.")


async def handle_openai_error(_request: ConnexionRequest, exc: OpenAIError) -> ConnexionResponse:
    return to_response(answered(exc))


async def handle_problem(_request: ConnexionRequest, exc: ProblemException) -> ConnexionResponse:
    return to_response(from_problem(exc))


async def handle_http_exception(_request: ConnexionRequest, exc: HTTPException) -> ConnexionResponse:
    return to_response(from_http_exception(exc))


async def handle_unexpected(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    return to_response(answered(exc))


def register(app) -> None:
    app.add_error_handler(OpenAIError, handle_openai_error)
    app.add_error_handler(ProblemException, handle_problem)
    app.add_error_handler(HTTPException, handle_http_exception)
    app.add_error_handler(Exception, handle_unexpected)
