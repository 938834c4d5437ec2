"""Errors the engine reports for one request; they travel to the API process as data."""

from __future__ import annotations

from typing import Any

from ....errors import context_length_exceeded


class RequestError(Exception):
    """A request the engine refuses; becomes an OpenAI error with this status."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "message": self.message, "param": self.param, "code": self.code}


class ContextError(RequestError):
    def __init__(self, n_tokens: int, n_ctx: int, param: str):
        error = context_length_exceeded(n_tokens, n_ctx, param)
        super().__init__(error.status, error.message, error.param, error.code)
