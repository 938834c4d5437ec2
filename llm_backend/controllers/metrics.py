"""Tag ``Metrics`` of openapi/extensions.yaml: Prometheus' scrape target (http/metrics.py)."""

from ..http.context import current


async def get_metrics():
    return current().metrics.response()
