"""Tag ``Embeddings``."""

from ..backends.capabilities import EMBEDDING
from ..http.rendering import answer_response
from ..http.context import current


async def create_embedding(body: dict):
    model_id = body["model"]
    backend = current().registry.serving(model_id, EMBEDDING)
    return answer_response(await backend.embedding(model_id, body))
