"""Tag ``Model management`` of openapi/extensions.yaml: models listed, loaded and unloaded at runtime (admin key only)."""

from ..http.rendering import json_response
from ..http.context import current
from ..http.sse import status_stream


async def admin_list_models():
    return json_response({"object": "list", "data": current().registry.statuses()})


async def admin_load_model(model: str):
    return json_response(await current().registry.load(model))


async def admin_unload_model(model: str):
    return json_response(await current().registry.unload(model))


async def admin_stream_model_events():
    return status_stream(current().registry.watch(), endless=True)
