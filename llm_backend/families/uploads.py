"""The Uploads API and the files uploads make, a family whose parts are still in the layers'
folders (``serving/uploads.py``, ``controllers/uploads.py``, ``storage/uploads.py``; the
Files operations, ``controllers/files.py``): its registration. Uploads past their expiry are
swept. A file (createFile) and an upload's part (addUploadPart) are multipart bodies bounded
by ``max_upload_bytes`` (OpenAI's 512 MB) instead of ``max_body_bytes``, spooled to disk. A
pure gateway keeps no files: they go upstream."""

from __future__ import annotations

import asyncio

from llm_backend.families.family import Family, gateway_forwards
from llm_backend.serving import uploads
from llm_backend.settings import Settings

# createFile and addUploadPart ({...}: any one path segment).
UPLOAD_PATHS = ("/v1/files", "/v1/uploads/{upload_id}/parts")


def _body_limits(settings: Settings) -> dict[str, int]:
    return {path: settings.max_upload_bytes for path in UPLOAD_PATHS}


FAMILY = Family(
    "uploads",
    start=lambda services: [asyncio.create_task(uploads.keep(services), name="upload sweep")],
    body_limits=_body_limits,
    answered=gateway_forwards("Files", "Uploads"),
)
