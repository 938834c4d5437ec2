"""Tag ``Models``."""

from ..http.rendering import answer_response, json_response
from ..http.context import current


async def list_models():
    cards = await current().registry.models()
    return json_response({"object": "list", "data": [card.to_openai() for card in cards]})


async def retrieve_model(model: str):
    return answer_response(await current().registry.model(model))
