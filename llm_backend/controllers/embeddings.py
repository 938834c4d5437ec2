"""Tag ``Embeddings``."""

from ..responses import json_response
from ..services import current


async def create_embedding(body: dict):
    model_id = body["model"]
    backend = current().registry.backend_for(model_id)
    return json_response(await backend.embedding(model_id, body))
