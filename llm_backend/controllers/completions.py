"""Tag ``Completions``."""

from ..http.rendering import answer_response
from ..http.context import current


async def create_completion(body: dict):
    model_id = body["model"]
    backend = current().registry.backend_for(model_id)
    return answer_response(await backend.completion(model_id, body))
