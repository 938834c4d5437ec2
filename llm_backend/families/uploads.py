"""The Uploads API, a family whose parts are still in the layers' folders
(``serving/uploads.py``, ``controllers/uploads.py``, ``storage/uploads.py``): its
registration. Uploads past their expiry are swept."""

from __future__ import annotations

import asyncio

from llm_backend.families.family import Family
from llm_backend.serving import uploads

FAMILY = Family("uploads", start=lambda services: [asyncio.create_task(uploads.keep(services), name="upload sweep")])
