"""Tag ``Moderations``: a local moderation model (``moderation/model.py``) answers; a model
of an upstream goes there (a body naming it, by ``routed_by_model``; a body naming none,
whose default id an upstream serves, here)."""

from ..backends.base import Serving
from ..backends.capabilities import FORWARDING, MODERATION
from ..http import context
from ..http.context import current
from ..http.forwarding import forward_served
from ..http.rendering import json_response
from ..moderation.categories import DEFAULT_MODEL


async def create_moderation(body: dict):
    services = current()
    model_id = body.get("model") or DEFAULT_MODEL
    context.record().model = model_id
    if services.registry.backend_for(model_id).serving("createModeration") is not Serving.HERE:
        return await forward_served(services.registry.serving(model_id, FORWARDING), body)
    answer = await services.registry.serving(model_id, MODERATION).moderation(model_id, body)
    # OpenAI's answer carries no usage; the accounting counts its tokens all the same (a
    # guard model's were counted as its engine reported them).
    usage = answer.pop("usage", None)
    if usage is not None and not context.record().tokens_counted and services.metrics is not None:
        services.metrics.count_tokens(model_id, usage)
        context.record().tokens_counted = True
    return json_response(answer)
