"""OpenAI's Batch API, a family whose parts are still in the layers' folders
(``serving/batches/``, ``http/batch_lines.py``, ``controllers/batch.py``,
``storage/batches.py``): its registration. Batches are taken by lease and resumed wherever
their process died; the runner serves every kind of batch (a family's too:
``Family.batch_routes``). A pure gateway keeps no batches: they go upstream."""

from __future__ import annotations

import asyncio

from llm_backend.families.family import Family, gateway_forwards

FAMILY = Family(
    "batches",
    start=lambda services: [asyncio.create_task(services.batches.run(), name="batch runner")],
    stop=lambda services: services.batches.stop(),
    answered=gateway_forwards("Batch"),
)
