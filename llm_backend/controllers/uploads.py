"""Tag ``Uploads``: a file sent in parts, completed into a File (serving/uploads.py)."""

from typing import Any

from ..errors import bad_request
from ..http.context import current, current_owner
from ..http.rendering import json_response
from ..serving import uploads

READ = 1 << 20


async def create_upload(body: dict):
    return json_response(await uploads.create(current(), current_owner(), body))


async def add_upload_part(upload_id: str, body: dict[str, Any] | None = None, data: Any = None, **_: Any):
    part = data if data is not None else (body or {}).get("data")
    if part is None or not hasattr(part, "read"):
        raise bad_request("Missing required parameter: 'data'.", "data", "missing_required_parameter")
    source = part.file  # the parser's temporary file: read in parts, never whole
    source.seek(0)
    chunks = iter(lambda: source.read(READ), b"")
    return json_response(await uploads.add_part(current(), current_owner(), upload_id, chunks))


async def complete_upload(upload_id: str, body: dict):
    return json_response(await uploads.complete(current(), current_owner(), upload_id, body))


async def cancel_upload(upload_id: str):
    return json_response(await uploads.cancel(current(), current_owner(), upload_id))
