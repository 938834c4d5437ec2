"""Tag ``Conversations``: conversations and their items, per API key."""

from ..serving import conversations
from ..serving.metadata import check_metadata
from ..serving.lists import check_limit, list_object
from ..errors import bad_request
from ..http.rendering import json_response
from ..http.context import current, current_owner
from ..serving.responses.items import normalize


def _object(body) -> dict:
    # createConversationItems' body schema has no ``type: object``: null or a string pass it.
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", code="invalid_body")
    return body


async def create_conversation(body: dict | None = None):
    body = _object(body or {})
    metadata = check_metadata(body.get("metadata"))
    # Kept as OpenAI keeps them, images included (issue #60): a conversation has no model; a
    # response that reads it with a model that cannot see refuses the image then.
    items = normalize(body.get("items"), "items", images=True)
    return json_response(await conversations.create(current(), current_owner(), metadata, items))


async def get_conversation(conversation_id: str):
    return json_response(await conversations.stored(current(), current_owner(), conversation_id))


async def update_conversation(conversation_id: str, body: dict | None = None):
    if not body:  # no body (optional in the document; Connexion hands {}), yet metadata is required
        raise bad_request("Missing required parameter: 'metadata'.", "metadata", "missing_required_parameter")
    metadata = check_metadata(_object(body).get("metadata"))
    return json_response(await conversations.updated(current(), current_owner(), conversation_id, metadata))


async def delete_conversation(conversation_id: str):
    await conversations.delete(current(), current_owner(), conversation_id)
    return json_response({"id": conversation_id, "object": "conversation.deleted", "deleted": True})


async def create_conversation_items(conversation_id: str, body: dict, **_):
    items = normalize(_object(body).get("items"), "items", images=True)  # as create_conversation's
    stored = await conversations.add_items(current(), current_owner(), conversation_id, items)
    return json_response(list_object(stored, has_more=False))


async def list_conversation_items(
    conversation_id: str, limit: int = 20, after: str | None = None, order: str = "desc", **_
):
    page = await conversations.listed_items(current(), current_owner(), conversation_id, after, check_limit(limit), order)
    return json_response(list_object(page.data, page.has_more))


async def get_conversation_item(conversation_id: str, item_id: str, **_):
    return json_response(await conversations.item(current(), current_owner(), conversation_id, item_id))


async def delete_conversation_item(conversation_id: str, item_id: str):
    return json_response(await conversations.delete_item(current(), current_owner(), conversation_id, item_id))
