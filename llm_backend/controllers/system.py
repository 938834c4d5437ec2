"""Tag ``System`` of openapi/extensions.yaml: probes for orchestrators."""

from ..http.context import current
from ..http.rendering import json_response
from ..http.starting import HEALTHY


async def get_health():
    return json_response(HEALTHY)


async def get_ready():
    services = current()
    models_ok, models_detail = services.registry.readiness()
    database_ok, database_detail = await services.database.ping()
    checks = {
        "models": {"ok": models_ok, "detail": models_detail},
        "database": {"ok": database_ok, "detail": database_detail},
    }
    ready = models_ok and database_ok
    return json_response({"status": "ready" if ready else "not_ready", "checks": checks}, 200 if ready else 503)
