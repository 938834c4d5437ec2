"""Anthropic's error body, ``{"type": "error", "error": {"type", "message"}}``, for the
service's errors (the catalogue's ``OpenAIError``): the type follows the HTTP status as
Anthropic's does (its API reference, "Errors"); the status stays the service's. And the
family's own errors, each an ``OpenAIError`` rendered by the one renderer and shown in
Anthropic's shape (``middleware.py``): the Messages lane's rules (``serving/bounds.py``,
``serving/signatures.py``), worded as Anthropic words them where it does (a thinking
block's: the message its API answers); Message Batches' (``serving/batches.py``); an
Anthropic upstream's model asked for OpenAI's operations (``backend.py``)."""

from __future__ import annotations

from typing import Any

from llm_backend.errors import OpenAIError, bad_request, not_found

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


def too_many_blocks(param: str, limit: int) -> OpenAIError:
    return bad_request(
        f"Invalid '{param}': too many blocks in all. A request's lists of blocks (a system prompt's, each "
        f"message's, each tool result's, its context edits) can hold at most {limit} items together, and this "
        f"one brings them past it.",
        param,
        "array_above_max_length",
    )


def stop_sequences_too_large(limit: int, size: int) -> OpenAIError:
    return bad_request(
        f"Invalid 'stop_sequences': the stop sequences are {size} bytes together (UTF-8); at most {limit} are allowed.",
        "stop_sequences",
        "string_above_max_length",
    )


def invalid_thinking_signature(message: int, block: int) -> OpenAIError:
    """A ``thinking`` block sent back that this service did not sign for this project
    (Anthropic's own words and path form)."""
    return bad_request(
        f"messages.{message}.content.{block}: Invalid `signature` in `thinking` block",
        f"messages[{message}].content[{block}].signature",
        "invalid_value",
    )


def invalid_redacted_thinking(message: int, block: int) -> OpenAIError:
    """A ``redacted_thinking`` block sent back: this service redacts no thinking, so no
    ``data`` is its own (Anthropic's words for one whose data does not verify)."""
    return bad_request(
        f"messages.{message}.content.{block}: Invalid `data` in `redacted_thinking` block",
        f"messages[{message}].content[{block}].data",
        "invalid_value",
    )


def duplicate_custom_id(custom_id: str, param: str) -> OpenAIError:
    """A Message Batch's requests each need a custom_id of their own (Anthropic's rule)."""
    return bad_request(f"Duplicate custom_id '{custom_id}': each request of a batch needs its own.", param, "invalid_value")


def streaming_in_batch(param: str) -> OpenAIError:
    """A batch's request answers once, whole: ``stream: true`` is that request's error."""
    return bad_request("Streaming is not supported in a batch: 'stream' must be false or absent.", param, "invalid_value")


def message_batch_not_found(batch_id: str, param: str = "message_batch_id") -> OpenAIError:
    """Anthropic's Message Batches (rendered in Anthropic's shape: ``not_found_error``)."""
    return not_found("message batch", batch_id, param)


def message_batch_ended(batch_id: str, status: str) -> OpenAIError:
    return bad_request(f"Message Batch {batch_id} has ended ({status}): it can no longer be canceled.", "message_batch_id")


def message_batch_processing(batch_id: str, processing_status: str, what: str) -> OpenAIError:
    """A batch still ``in_progress`` or ``canceling``: its results, or deleting it, wait for its end."""
    return bad_request(
        f"Message Batch {batch_id} has not ended (processing_status: {processing_status}): {what} only once "
        "processing has ended (cancel it to end it sooner).",
        "message_batch_id",
    )
