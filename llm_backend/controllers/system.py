"""Tag ``System`` of openapi/extensions.yaml: probes for orchestrators."""

from ..http.context import current
from ..http.rendering import json_response
from ..http.starting import HEALTHY
from ..serving import readiness


async def get_health():
    return json_response(HEALTHY)


async def get_ready():
    ready, found = await readiness.checks(current())
    return json_response({"status": "ready" if ready else "not_ready", "checks": found}, 200 if ready else 503)
