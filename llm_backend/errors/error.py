"""The error itself: ``OpenAIError``, the one exception a request is answered with, its type
following its status as OpenAI's does; the two errors every other one falls back on (a 400,
a 500); ``answered``, which logs what a request raised and picks the error to answer; and
``named_as``, a refusal of a translated request named in the client's API's words.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

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


def server_error() -> OpenAIError:
    # The client learns nothing about internals; the log has the traceback and request id.
    return OpenAIError(500, "The server had an error while processing your request.")


def answered(exc: BaseException) -> OpenAIError:
    """The error to answer a request that raised ``exc`` with, logged: a server-side
    OpenAIError by its message; anything else with its traceback (with the request id
    bound by the logging middleware), while the client learns nothing about internals."""
    if isinstance(exc, OpenAIError):
        if exc.status >= 500:
            log.error("request failed: %s", exc.message)
        return exc
    log.exception("unhandled error", exc_info=exc)
    return server_error()


async def named_as(work: Awaitable[T], names: Mapping[str, str]) -> T:
    """``work``'s result; a refusal of a field of the request it was translated to (chat's,
    for Responses and Messages) named as the client's API names the field (``names``: the
    translation's field -> the client's), in its ``param`` and its message alike."""
    try:
        return await work
    except OpenAIError as error:
        translated = error.param
        if translated is not None and translated in names:
            error.param = names[translated]
            error.message = error.message.replace(translated, error.param)
        raise
