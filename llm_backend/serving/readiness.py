"""What the readiness probe (``GET /ready``) reports: the models loaded, the database reachable,
and the rate limits' storage reachable when it is a ``limits`` storage (``rate_limit_storage:
redis://...``; issue #56): while it is down every limited key is refused (503,
``http/key_limits.py``), so the replica is not ready and a load balancer sends elsewhere.

Here rather than in the controller so that controllers never reach the database; the
database's ping runs in the worker thread like every other query (``Database.ping``), the
storage's in a thread of its own (at most ``limits_storage.TIMEOUT`` to connect and answer).
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from limits.storage import Storage

from ..storage.limits_storage import in_limits, limits_storage
from .services import Services


async def checks(services: Services) -> tuple[bool, dict[str, Any]]:
    """(ready, what each check found)."""
    models_ok, models_detail = services.registry.readiness()
    database_ok, database_detail = await services.database.ping()
    found = {
        "models": {"ok": models_ok, "detail": models_detail},
        "database": {"ok": database_ok, "detail": database_detail},
    }
    uri = services.settings.rate_limit_storage
    if in_limits(uri):
        reachable = await asyncio.to_thread(_probe(uri).check)
        found["rate_limits"] = {"ok": reachable, "detail": "reachable" if reachable else "unreachable"}
    return all(check["ok"] for check in found.values()), found


@functools.cache
def _probe(uri: str) -> Storage:
    """The storage ``uri`` names, as the probe pings it: one per URI and process (the
    counters keep their own, whose counts a probe must not share: ``memory://``)."""
    return limits_storage(uri)
