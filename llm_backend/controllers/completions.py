"""Tag ``Completions``."""

from ..backends.capabilities import COMPLETION
from ..budgets import check_prompts
from ..http.rendering import answer_response
from ..http.context import current


async def create_completion(body: dict):
    check_prompts(body)  # every lane and backend, before any prompt is read
    model_id = body["model"]
    backend = current().registry.serving(model_id, COMPLETION)
    return answer_response(await backend.completion(model_id, body))
