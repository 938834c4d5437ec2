"""The catalogue of errors the service answers with, in OpenAI's shape.

``{"error": {"message": str, "type": str, "param": str | None, "code": str | None}}`` with
the status OpenAI uses. Every named error is built here; nothing in this module knows the
web framework, so backends and storage can raise them. ``http/problems.py`` renders them
(and translates the framework's own problems into them).
"""

from __future__ import annotations

import logging
from typing import Any

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


# --- the request ---------------------------------------------------------------------------


def bad_request(message: str, param: str | None = None, code: str | None = None) -> OpenAIError:
    return OpenAIError(400, message, param=param, code=code)


def invalid_json() -> OpenAIError:
    return bad_request(
        "We could not parse the JSON body of your request. (HINT: This likely means you "
        "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload.)"
    )


def too_deep(limit: int) -> OpenAIError:
    return bad_request(f"The request body nests arrays and objects more than {limit} levels deep.", code="invalid_body")


def too_many_values(limit: int) -> OpenAIError:
    return bad_request(
        f"The request body holds more than {limit} JSON values and keys (strings, numbers, arrays, objects, "
        "object keys): it is refused before it is read further.",
        code="invalid_body",
    )


def invalid_body() -> OpenAIError:
    return bad_request(
        "The request body must be a JSON object, sent with 'Content-Type: application/json'.", code="invalid_body"
    )


def unreadable_body(why: str) -> OpenAIError:
    # A tenant's forwarded request is checked for the ids it names; what cannot be read
    # cannot be checked, so it is refused (issue #33: closed when unsure).
    return bad_request(f"The request body could not be read: {why}.", code="invalid_body")


def invalid_client_event() -> OpenAIError:
    # The Responses WebSocket mode: each text frame is one client event.
    return bad_request(
        "Each WebSocket message must be a JSON object: a client event such as 'response.create'.",
        code="invalid_event",
    )


def request_too_large(limit: int) -> OpenAIError:
    return OpenAIError(413, f"The request body is larger than the limit of {limit} bytes.", code="request_too_large")


def request_timeout(seconds: float, min_rate: int) -> OpenAIError:
    return OpenAIError(
        408,
        f"The request body did not arrive in time: it must come within {seconds:g} seconds plus one second per "
        f"{min_rate} bytes.",
        code="request_timeout",
    )


def unknown_url() -> OpenAIError:
    return OpenAIError(404, "Unknown request URL. Please check the URL and method.", code="unknown_url")


def method_not_allowed() -> OpenAIError:
    return OpenAIError(405, "Method not allowed for this URL. Please check the URL and method.", code="method_not_allowed")


def not_served(operation_id: str, method: str, path: str) -> OpenAIError:
    # OpenAI's answer for a URL it does not serve: a 404, which the SDKs do not retry (they
    # retry a 501 twice, with back-off, before the caller sees it).
    return OpenAIError(
        404,
        f"Unknown request URL: {method} {path}. This server does not serve the operation '{operation_id}'.",
        code="unknown_url",
    )


def server_error() -> OpenAIError:
    # The client learns nothing about internals; the log has the traceback and request id.
    return OpenAIError(500, "The server had an error while processing your request.")


# --- keys ----------------------------------------------------------------------------------


def missing_key() -> OpenAIError:
    return OpenAIError(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization "
        "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        code="invalid_api_key",
    )


def invalid_key() -> OpenAIError:
    return OpenAIError(
        401,
        "Incorrect API key provided. You can find your API key in your account settings.",
        code="invalid_api_key",
    )


def not_admin() -> OpenAIError:
    return OpenAIError(
        403,
        "You have insufficient permissions for this operation: it needs an admin key, and the API key "
        "provided is not one.",
        code="insufficient_permissions",
    )


def forbidden() -> OpenAIError:
    return OpenAIError(403, "You are not allowed to perform this request.", code="forbidden")


def cross_site_websocket(origin: str) -> OpenAIError:
    # A WebSocket handshake from a web page of another origin (http/edge.py).
    return OpenAIError(
        403, f"WebSocket connections from the origin '{origin[:200]}' are not allowed.", code="origin_not_allowed"
    )


def cross_site_request(origin: str) -> OpenAIError:
    # A keyless service written to by a web page of another site (http/edge.py).
    return OpenAIError(
        403,
        f"Requests from the origin '{origin[:200]}' may not change anything on this service: add it to "
        "cors_origins, or configure API keys.",
        code="origin_not_allowed",
    )


def foreign_host(host: str) -> OpenAIError:
    # A keyless service reached under a name that is not its own: DNS rebinding (http/edge.py).
    return OpenAIError(
        403,
        f"The host '{host[:200]}' is not allowed: reach this service as localhost or by its address, or add "
        "the name to allowed_hosts.",
        code="host_not_allowed",
    )


# --- models --------------------------------------------------------------------------------


def model_not_found(model_id: str) -> OpenAIError:
    return OpenAIError(
        404,
        f"The model `{model_id}` does not exist or you do not have access to it.",
        param="model",
        code="model_not_found",
    )


def model_not_supported(model_id: str, what: str) -> OpenAIError:
    return OpenAIError(400, f"The model `{model_id}` does not support {what}.", param="model", code="model_not_supported")


def chat_model_only(model_id: str, endpoint: str) -> OpenAIError:
    # OpenAI's answer for a chat model used on /v1/completions, in its words.
    return OpenAIError(
        404,
        f"The model `{model_id}` is a chat model (a persona) and not supported in the "
        f"v1/{endpoint} endpoint. Did you mean to use v1/chat/completions?",
        param="model",
    )


def rate_limited(kind: str, limit: int, used: int, wait: int, headers: dict[str, str], per: str = "min") -> OpenAIError:
    unit = ("R" if kind == "requests" else "T") + ("PD" if per == "day" else "PM")
    return OpenAIError(
        429,
        f"Rate limit reached for this key on {kind} per {per} ({unit}): Limit {limit}, Used {used}, "
        f"Requested 1. Please try again in {wait}s.",
        code="rate_limit_exceeded",
        type=kind,
        headers={"retry-after": str(wait), **headers},
    )


def guard_gave_no_verdict(model_id: str) -> OpenAIError:
    # Closed when unsure: a moderation guard's answer that cannot be read judges nothing.
    return OpenAIError(500, f"The moderation guard model `{model_id}` gave no verdict; nothing was judged.", code="model_error")


def upstream_model(model_id: str) -> OpenAIError:
    return bad_request(
        f"The model `{model_id}` is served by an upstream API; only local models are loaded here.", "model"
    )


def model_loading(model_id: str, timeout: float) -> OpenAIError:
    return OpenAIError(
        503,
        f"The model `{model_id}` is still loading after {timeout:g} seconds. Please retry shortly.",
        code="model_loading",
        type="server_error",
        headers={"retry-after": "5"},
    )


def context_length_exceeded(n_tokens: int, n_ctx: int, param: str) -> OpenAIError:
    return bad_request(
        f"This model's maximum context length is {n_ctx} tokens. However, your request "
        f"needs {n_tokens} tokens. Please reduce the length of the input.",
        param,
        "context_length_exceeded",
    )


def max_tokens_too_large(param: str, value: int, n_ctx: int) -> OpenAIError:
    return bad_request(
        f"{param} is too large: {value}. This model supports at most {n_ctx} completion tokens, "
        f"whereas you provided {value}.",
        param,
        "invalid_value",
    )


def queue_full(model_id: str, retry_after: int) -> OpenAIError:
    return OpenAIError(
        429,
        f"Too many requests are waiting for model '{model_id}'. Please retry shortly.",
        code="rate_limit_exceeded",
        type="rate_limit_error",
        headers={"retry-after": str(retry_after)},
    )


def worker_crashed() -> OpenAIError:
    return OpenAIError(
        503,
        "The model's engine stopped while serving this request; it is being restarted. Please retry.",
        code="engine_unavailable",
        type="server_error",
    )


def worker_out_of_memory(limit: int | None) -> OpenAIError:
    # A worker killed past its own memory ceiling (backends/llama/worker_process.py): this request
    # cost too much (or hit a bug); the worker restarts, the service stays up.
    return OpenAIError(
        503,
        f"The engine serving this request passed its memory ceiling ({(limit or 0) >> 20} MB) and was restarted. "
        "A smaller request may succeed.",
        code="worker_out_of_memory",
        type="server_error",
    )


def model_load_failed(model_id: str) -> OpenAIError:
    # Why is for the operator (the log, the admin model status), never for any key: the
    # exception's text names paths and internals (issue #33).
    return OpenAIError(
        503, f"The model `{model_id}` could not be loaded; the server's log has the reason.", code="model_load_failed", type="server_error"
    )


# --- stored objects ------------------------------------------------------------------------


def not_found(what: str, object_id: str, param: str) -> OpenAIError:
    """A stored object that does not exist, or is not the caller's (the same answer)."""
    return OpenAIError(404, f"No {what} found with id '{object_id}'.", param=param, code="not_found")


def missing(kind: str, object_id: str, param: str, code: str = "not_found") -> OpenAIError:
    """OpenAI's words for Responses-era objects: ``Response with id 'resp_x' not found.``"""
    return OpenAIError(404, f"{kind} with id '{object_id}' not found.", param=param, code=code)


def no_such(object_name: str, object_id: str, param: str = "id") -> OpenAIError:
    """OpenAI's words for some stored objects (files): ``No such File object: file-x``."""
    return OpenAIError(404, f"No such {object_name} object: {object_id}", param=param, code="not_found")


def missing_object(name: str, object_id: str, param: str | None = None) -> OpenAIError:
    """OpenAI's answer for an id that names nothing (or nothing of the caller's), by the
    name the API gives such ids (the path parameter: ``file_id``, ``batch_id``, ``model``)."""
    if name == "file_id":
        return no_such("File", object_id, param or "id")
    param = param or name
    if name in ("response_id", "conversation_id"):
        return missing(name.removesuffix("_id").capitalize(), object_id, param)
    if name == "model":
        return model_not_found(object_id)
    return not_found(name.removesuffix("_id").replace("_", " "), object_id, param)


def vector_store_expired(store_id: str, param: str = "vector_store_id") -> OpenAIError:
    """A vector store past its ``expires_after``: still shown (``status: expired``), no
    longer searched or filled."""
    return OpenAIError(
        400,
        f"Vector store '{store_id}' has expired: it can no longer be searched or have files added.",
        param=param,
        code="vector_store_expired",
    )


# --- upstream APIs -------------------------------------------------------------------------


def no_deployment(model_id: str) -> OpenAIError:
    return OpenAIError(
        503,
        f"No deployment of model '{model_id}' is available right now. Please retry shortly.",
        code="no_deployment_available",
        type="server_error",
        headers={"retry-after": "1"},
    )


def upstream_unreachable(upstream: str) -> OpenAIError:
    # Names the upstream, never its URL or key: the message reaches clients and logs.
    return OpenAIError(
        502,
        f"The upstream API '{upstream}' could not be reached. Please retry shortly.",
        code="upstream_unreachable",
        type="server_error",
    )


def upstream_broke_off(upstream: str) -> OpenAIError:
    return OpenAIError(502, f"The upstream API '{upstream}' broke off the answer.", code="upstream_unreachable")


def upstream_timeout(upstream: str, seconds: float) -> OpenAIError:
    return OpenAIError(
        504,
        f"The upstream API '{upstream}' did not answer within {seconds:g} seconds.",
        code="upstream_timeout",
        type="server_error",
    )


def upstream_unreadable() -> OpenAIError:
    # An answer the tenant guard must read (a list to filter, objects to record) that it
    # cannot: refused rather than passed on unread.
    return OpenAIError(
        502, "The upstream API's answer could not be read, so it was not passed on.", code="upstream_unreadable", type="server_error"
    )


def upstream_refused(status: int, what: str) -> OpenAIError:
    return OpenAIError(status, f"The upstream API refused the {what}.")


# --- answering -----------------------------------------------------------------------------


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
