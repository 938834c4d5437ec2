"""Retrieval (files into searchable chunks: vector stores, ``file_search``), a family whose
parts are still in the layers' folders (``retrieval/``, ``serving/retrieval.py``,
``serving/vector_stores.py``, ``storage/vector_*.py``): its registration. A pure gateway keeps
no vector stores: they go upstream. The embedding model it embeds with is the core's
(``backends/embedding/``)."""

from __future__ import annotations

import asyncio

from llm_backend.families.family import Family, gateway_forwards
from llm_backend.serving import expiry
from llm_backend.serving.services import Services


async def _prepare(services: Services) -> None:
    # Upload leftovers swept; store files a dead process left in_progress taken over.
    if services.settings.local_models:
        await services.database.run(services.retrieval.sweep)


def _tasks(services: Services) -> list[asyncio.Task]:
    settings = services.settings
    if not settings.local_models:
        return []
    # Store files a dead process left in_progress are taken over; files and vector stores
    # past their expires_after swept (serving/expiry.py).
    return [
        asyncio.create_task(services.retrieval.keep(settings.background_lease)),
        asyncio.create_task(expiry.sweep(services, settings.expiry_sweep_seconds)),
    ]


async def _stop(services: Services) -> None:
    if "retrieval" in vars(services):  # built only when used
        await services.database.run(services.retrieval.stop)


FAMILY = Family("retrieval", prepare=_prepare, start=_tasks, stop=_stop, answered=gateway_forwards("Vector stores"))
