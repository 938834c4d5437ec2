"""What the readiness probe (``GET /ready``) reports: the models loaded, the database reachable.

Here rather than in the controller so that controllers never reach the database; the
database's ping runs in the worker thread like every other query (``Database.ping``).
"""

from __future__ import annotations

from typing import Any

from .services import Services


async def checks(services: Services) -> tuple[bool, dict[str, Any]]:
    """(ready, what each check found)."""
    models_ok, models_detail = services.registry.readiness()
    database_ok, database_detail = await services.database.ping()
    found = {
        "models": {"ok": models_ok, "detail": models_detail},
        "database": {"ok": database_ok, "detail": database_detail},
    }
    return models_ok and database_ok, found
