"""Errors of stored objects: an id that names nothing (or nothing of the caller's: the same
answer), in the words OpenAI uses for each kind, and objects in a state that refuses the
operation (an expired vector store, an ended batch, an upload not open for parts).
"""

from __future__ import annotations

from typing import Any

from .error import OpenAIError, bad_request
from .models import model_not_found


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


def chat_completion_not_found(completion_id: str, param: str = "completion_id") -> OpenAIError:
    return not_found("chat completion", completion_id, param)


def response_not_found(response_id: str, param: str = "response_id") -> OpenAIError:
    return missing("Response", response_id, param)


def conversation_not_found(conversation_id: str, param: str = "conversation_id") -> OpenAIError:
    return missing("Conversation", conversation_id, param)


def batch_not_found(batch_id: str, param: str = "batch_id") -> OpenAIError:
    return not_found("batch", batch_id, param)


def batch_not_cancellable(status: str) -> OpenAIError:
    return OpenAIError(409, f"Cannot cancel a batch with status '{status}'.")


def vector_store_not_found(store_id: str) -> OpenAIError:
    return not_found("vector store", store_id, "vector_store_id")


def file_not_found(file_id: str, param: str = "file_id") -> OpenAIError:
    # A vector store's words for a file (the Files API's are ``no_such``'s).
    return not_found("file", file_id, param)


def vector_store_file_not_found(store_id: str, file_id: str) -> OpenAIError:
    return OpenAIError(
        404, f"No file found with id '{file_id}' in vector store '{store_id}'.", param="file_id", code="not_found"
    )


def file_batch_not_found(batch_id: str) -> OpenAIError:
    return not_found("file batch", batch_id, "batch_id")


def upload_refused(reason: str, details: dict[str, Any], upload_id: str, max_part_bytes: int) -> OpenAIError:
    """The client's words for what ``storage/uploads.py`` refused (``UploadRefused``'s
    ``reason`` and ``details``)."""
    if reason == "not_found":
        return no_such("Upload", upload_id, "upload_id")
    # (message, param, code): a state the upload is in has no OpenAI code; a wrong value does.
    messages = {
        "completed": ("This upload is already completed.", "upload_id", None),
        "cancelled": ("This upload is cancelled.", "upload_id", None),
        "expired": ("This upload has expired: an upload is usable for an hour after its creation.", "upload_id", None),
        "completing": ("This upload is being completed.", "upload_id", None),
        "part_too_large": (f"A part can be at most {max_part_bytes} bytes (64 MB).", "data", "invalid_value"),
        "empty_part": ("A part cannot be empty.", "data", "invalid_value"),
        "too_many_bytes": (
            f"This part would bring the upload to {details.get('stored', 0) + details.get('size', 0)} bytes; "
            f"it was created for {details.get('declared')} bytes.",
            "data",
            "invalid_value",
        ),
        "duplicate_part": ("Each part can be named once in 'part_ids'.", "part_ids", "invalid_value"),
        "unknown_part": (f"Upload {upload_id} has no part '{details.get('part_id')}'.", "part_ids", "invalid_value"),
        "byte_count": (
            f"The parts named hold {details.get('total')} bytes; the upload was created for {details.get('declared')} "
            "bytes. Name every part of the file in 'part_ids'.",
            "part_ids",
            "invalid_value",
        ),
        "md5_mismatch": ("The md5 checksum of the uploaded bytes does not match 'md5'.", "md5", "invalid_value"),
    }
    message, param, code = messages[reason]
    return bad_request(message, param, code)
