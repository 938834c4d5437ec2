"""The expiry sweeper: ``expires_after`` of files and vector stores enforced.

Every ``expiry_sweep_seconds`` (60) each replica deletes the files past their
``expires_at`` (row, store memberships, bytes: OpenAI deletes an expired file) and expires
the vector stores past ``last_active_at`` + ``expires_after.days`` (still listed, with
``status: expired``; their chunks dropped, never searched again). Between two sweeps the
API already answers as after one: an expired file is a 404 everywhere, an expired store is
``expired`` and refuses searches and new files (``storage/files.py``,
``storage/vector_stores.py``). Several replicas may sweep at once: every deletion and every
expiry is one conditional transaction, so each object goes once, and a failed sweep is
logged and tried again at the next.
"""

from __future__ import annotations

import asyncio
import logging

from .services import Services

log = logging.getLogger(__name__)


def sweep_once(services: Services) -> tuple[int, int]:
    """One sweep (blocking): the files deleted and the stores expired."""
    files = services.retrieval.file_store().expire()
    stores = services.database.vector_stores.expire()
    for store_seq in stores:
        services.retrieval.searcher.forget(store_seq)
    return files, len(stores)


async def sweep(services: Services, interval: float) -> None:
    """Run for the process's life (a task of the app's lifespan)."""
    while True:
        try:
            files, stores = await services.database.run(sweep_once, services)
            if files or stores:
                log.info("expired objects swept", extra={"files": files, "vector_stores": stores})
        except Exception:  # a database outage must not end the sweeper: try again later
            log.exception("expiry sweep failed")
        await asyncio.sleep(interval)
