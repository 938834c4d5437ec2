"""The app's life: the backends started and the database prepared before the first request,
the families' background work beside the requests, and everything stopped in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

from .. import off_loop
from ..families.family import Family
from ..serving.services import Services
from .assembly import Assembly

log = logging.getLogger(__name__)


async def _prepare_database(services: Services, assembly: Assembly, families: Sequence[Family]) -> None:
    settings, database, keyring = services.settings, services.database, assembly.keyring
    if settings.database_migrate:
        await database.run(database.upgrade, owners=keyring.legacy_owners())
    # Each static key's owner is a project of its own: a key's tenant is its project (``auth/``).
    await database.run(database.projects.ensure_static, sorted(keyring.owners()))
    for family in families:
        if family.prepare is not None:
            await family.prepare(services)


@contextlib.asynccontextmanager
async def running(services: Services, assembly: Assembly, families: Sequence[Family]) -> AsyncIterator[None]:
    registry, database = services.registry, services.database
    # The backends first: the eager models load in their workers (most of a start:
    # ~0.8 s for the default model) while the database is prepared here (0.1-0.3 s).
    await registry.start()
    try:
        await _prepare_database(services, assembly, families)
    except BaseException:
        await registry.stop()
        raise
    database.usage.start()
    tasks = [task for family in families for task in family.start(services)]
    log.info(
        "models configured",
        extra={
            "models": [card.id for card in registry.local_models()],
            "upstreams": [upstream.name for upstream in registry.upstreams],
        },
    )
    off_loop.settle()  # the start-up's objects walked by no collection (off_loop.py)
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for family in reversed(families):
            if family.stop is not None:
                await family.stop(services)
        await registry.stop()
        await assembly.spend_meter.settled()
        await database.usage.stop()
        database.dispose()
        if assembly.traced is not None:
            await asyncio.to_thread(assembly.traced.shutdown)  # the last spans exported
