"""Tag ``Models``. ``GET /v1/models`` is OpenAI's listModels and Anthropic's list of
models at once (the same path in both documents): a request with an ``anthropic-version``
header (Anthropic's SDKs and Claude Code send one on every request) gets Anthropic's shape
(``openapi/anthropic.yaml``'s note), any other OpenAI's."""

from datetime import datetime, timezone

from ..http.rendering import answer_response, json_response
from ..http.context import current, scope


def _anthropic() -> bool:
    return any(name == b"anthropic-version" for name, _ in scope()["headers"])


def _anthropic_model(card) -> dict:
    created = datetime.fromtimestamp(card.created or 0, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"type": "model", "id": card.id, "display_name": card.id, "created_at": created}


async def list_models(**_):
    cards = await current().registry.models()
    if _anthropic():
        data = [_anthropic_model(card) for card in cards]
        first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
        return json_response({"data": data, "has_more": False, "first_id": first, "last_id": last})
    return json_response({"object": "list", "data": [card.to_openai() for card in cards]})


async def retrieve_model(model: str):
    if _anthropic():
        card = next((card for card in await current().registry.models() if card.id == model), None)
        if card is not None:
            return json_response(_anthropic_model(card))
    return answer_response(await current().registry.model(model))
