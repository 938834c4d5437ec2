"""Failures of every kind as OpenAI errors: Connexion's own problems (RFC 7807: validation,
security, routing) and Starlette's HTTP exceptions are translated into the catalogue's
errors, and every error handler renders through ``rendering.error_response``."""

from __future__ import annotations

import re

from connexion.exceptions import BadRequestProblem, ProblemException, UnsupportedMediaTypeProblem
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from starlette.exceptions import HTTPException

from .. import errors
from ..errors import OpenAIError, answered
from .rendering import error_response

# Connexion's parameter validator names the parameter inside its message.
_PARAM_IN_DETAIL = re.compile(r"(?:parameter|property) '([^']+)'|- '([^']+)'$")


def _param_from_detail(detail: str) -> str | None:
    match = _PARAM_IN_DETAIL.search(detail or "")
    return (match.group(1) or match.group(2)) if match else None


def from_problem(exc: ProblemException) -> OpenAIError:
    """Translate a Connexion problem (RFC 7807) into an OpenAI error."""
    detail = exc.detail or exc.title or "Request failed."
    if exc.status == 401:
        return errors.invalid_key()
    if exc.status == 403:
        return errors.forbidden()
    if isinstance(exc, (BadRequestProblem, UnsupportedMediaTypeProblem)) or exc.status in (400, 415):
        return errors.bad_request(detail, param=_param_from_detail(detail))
    if exc.status == 404:
        return OpenAIError(404, detail, code="not_found")
    if exc.status == 405:
        return OpenAIError(405, detail, code="method_not_allowed")
    if exc.status >= 500:
        return errors.server_error()
    return OpenAIError(exc.status, detail)


def from_http_exception(exc: HTTPException) -> OpenAIError:
    if exc.status_code == 404:
        return errors.unknown_url()
    if exc.status_code == 405:
        return errors.method_not_allowed()
    return OpenAIError(exc.status_code, str(exc.detail))


def _rendered(error: OpenAIError) -> ConnexionResponse:
    # Connexion's handlers must answer in its own response type; the body is still ours.
    response = error_response(error)
    return ConnexionResponse(
        status_code=response.status_code, mimetype="application/json", body=response.body, headers=error.headers
    )


async def _openai_error(_request: ConnexionRequest, exc: OpenAIError) -> ConnexionResponse:
    return _rendered(answered(exc))


async def _problem(_request: ConnexionRequest, exc: ProblemException) -> ConnexionResponse:
    return _rendered(from_problem(exc))


async def _http_exception(_request: ConnexionRequest, exc: HTTPException) -> ConnexionResponse:
    return _rendered(from_http_exception(exc))


async def _unexpected(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    return _rendered(answered(exc))


def register(app) -> None:
    app.add_error_handler(OpenAIError, _openai_error)
    app.add_error_handler(ProblemException, _problem)
    app.add_error_handler(HTTPException, _http_exception)
    app.add_error_handler(Exception, _unexpected)
