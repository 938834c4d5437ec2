"""Tag ``Files``: uploads kept for local use (file_search), bytes on disk, metadata in the
database (``storage/files.py``), every object scoped to the key that uploaded it.

An upload is bounded by ``max_upload_bytes`` (OpenAI's 512 MB by default; the BodyLimit
middleware answers 413 from the Content-Length before reading anything), not by the JSON
body limit. It is never whole in memory: the multipart validator spools the body to a
temporary file (``spec/forms.py``), the parser spools the file part, and it is copied to
storage in 1 MB parts (``storage/files.py``: temporary name, fsync, rename, then the row).
A 200 MB upload raised the server's peak resident memory by 3.5 MB (measured).
"""

from __future__ import annotations

import time
from typing import Any

from starlette.responses import FileResponse

from ..errors import bad_request
from ..http.context import current, current_owner
from ..http.rendering import json_response
from ..serving import files
from ..serving.lists import list_object
from ..spec.forms import form_object, request_folded_objects

UPLOAD_PART = 1 << 20
MAX_EXPIRY_SECONDS = 30 * 24 * 3600
MIN_EXPIRY_SECONDS = 3600


async def _expires_at(body: dict[str, Any]) -> int | None:
    """``expires_after`` (anchor ``created_at``, 3600..2592000 seconds), as a timestamp;
    a JSON part or bracketed fields (``spec/forms.py``)."""
    expiry = request_folded_objects().get("expires_after") or form_object(body, "expires_after")
    if expiry is None:
        return None
    if not isinstance(expiry, dict):
        raise bad_request("Invalid 'expires_after': expected an object.", "expires_after", "invalid_type")
    seconds: Any  # the client's: int() says below whether it is a number
    anchor, seconds = expiry.get("anchor"), expiry.get("seconds")
    if anchor != "created_at":
        raise bad_request("Invalid 'expires_after.anchor': expected 'created_at'.", "expires_after.anchor", "invalid_value")
    try:
        seconds = int(seconds)
    except (TypeError, ValueError):
        raise bad_request("Invalid 'expires_after.seconds': expected an integer.", "expires_after.seconds") from None
    if not MIN_EXPIRY_SECONDS <= seconds <= MAX_EXPIRY_SECONDS:
        raise bad_request(
            f"Invalid 'expires_after.seconds': must be between {MIN_EXPIRY_SECONDS} and {MAX_EXPIRY_SECONDS}.",
            "expires_after.seconds",
            "invalid_value",
        )
    return int(time.time()) + seconds


async def create_file(body: dict[str, Any], file: Any = None, **_: Any):
    upload = file or body.get("file")
    if upload is None or not hasattr(upload, "read"):
        raise bad_request("Missing required parameter: 'file'.", "file", "missing_required_parameter")
    expires_at = await _expires_at(body)
    source = upload.file  # the parser's temporary file: read in parts, never whole
    source.seek(0, 2)
    size = source.tell()
    source.seek(0)
    if not size:
        raise bad_request("The file is empty.", "file", "invalid_value")
    parts = iter(lambda: source.read(UPLOAD_PART), b"")
    created = await files.create(
        current(), current_owner(), upload.filename or "upload", body["purpose"], parts, getattr(upload, "content_type", None), expires_at
    )
    return json_response(created)


async def list_files(purpose: str | None = None, limit: int = 10000, order: str = "desc", after: str | None = None, **_):
    if not 1 <= limit <= 10000:
        raise bad_request("Invalid 'limit': must be between 1 and 10000.", "limit", "invalid_value")
    data, has_more = await files.listed(current(), current_owner(), purpose, after, limit, order)
    return json_response(list_object(data, has_more))


async def retrieve_file(file_id: str):
    return json_response(await files.stored(current(), current_owner(), file_id))


async def download_file(file_id: str):
    meta, path = await files.located(current(), current_owner(), file_id)
    # Streamed from disk in chunks: a 512 MB file is never read whole.
    return FileResponse(path, media_type=meta.get("mime_type") or "application/octet-stream")


async def delete_file(file_id: str):
    await files.delete(current(), current_owner(), file_id)
    return json_response({"id": file_id, "object": "file", "deleted": True})
