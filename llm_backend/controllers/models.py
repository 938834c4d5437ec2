"""Tag ``Models``."""

from ..responses import json_response
from ..services import current


async def list_models():
    cards = current().registry.models()
    return json_response({"object": "list", "data": [card.to_openai() for card in cards]})


async def retrieve_model(model: str):
    return json_response(current().registry.card(model).to_openai())
