"""Vector stores' storage, sampled hourly into the usage accounting (``vector_stores``: the
bytes each project keeps) and priced per GB-day (``serving/metering/prices.py``) into its
spend. A lifespan task of every replica; one replica samples each hour (it claims the hour
in ``rate_limit_counters``), so no hour is counted twice."""

from __future__ import annotations

import asyncio
import logging
import time

from ...auth import Principal
from ...storage.usage import VECTOR_STORES, Measured
from ..services import Services, required
from ..metering.prices import VECTOR_STORE_STORAGE

log = logging.getLogger(__name__)
HOUR = 3600
CLAIM = "sample:vector_stores"


async def sample(services: Services, hour: int) -> bool:
    """Sample the hour starting at ``hour`` unless another replica did; whether this one did."""
    database = services.database
    claimed, _ = await database.run(database.rate_counters.admit, CLAIM, [("spend", hour, 1, 1)], [])
    if not claimed:
        return False
    for project, kept in (await database.run(database.usage.vector_store_bytes)).items():
        database.usage.record(VECTOR_STORES, "", VECTOR_STORE_STORAGE, requests=1, project=project, bytes=kept)
        required(services.spend_meter, "a spend meter").spend(Principal(project), VECTOR_STORE_STORAGE, Measured(VECTOR_STORES, bytes=kept))
    return True


async def keep(services: Services, interval: float = HOUR) -> None:
    """Sample every hour, at its start (the first hour when the replica starts)."""
    while True:
        try:
            await sample(services, int(time.time()) // HOUR * HOUR)
        except Exception:
            log.warning("vector stores' storage not sampled this hour", exc_info=True)
        await asyncio.sleep(interval - time.time() % interval + 1)
