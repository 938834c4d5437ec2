"""Tag ``Chat``."""

from ..responses import answer_response
from ..services import current


async def create_chat_completion(body: dict):
    model_id = body["model"]
    backend = current().registry.backend_for(model_id)
    return answer_response(await backend.chat_completion(model_id, body))
