"""Errors of the model asked for: unknown, unfit for the operation, still loading, full,
out of room for the request, or its engine stopped.
"""

from __future__ import annotations

from .error import OpenAIError, bad_request


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


def guard_gave_no_verdict(model_id: str) -> OpenAIError:
    # Closed when unsure: a moderation guard's answer that cannot be read judges nothing.
    return OpenAIError(500, f"The moderation guard model `{model_id}` gave no verdict; nothing was judged.", code="model_error")


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


def max_tokens_beyond_ceiling(param: str, value: int, ceiling: int) -> OpenAIError:
    """A ``max_tokens`` above what any request is fitted to (settings/ceiling.py's
    ``MAX_TOKENS_CEILING``): OpenAI's 400 in its words, naming the field the client used."""
    return bad_request(
        f"{param} is too large: {value}. This model accepts at most {ceiling} completion tokens (fitted to its "
        f"longest answer), whereas you provided {value}.",
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
