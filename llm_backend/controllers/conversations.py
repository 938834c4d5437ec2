"""Tag ``Conversations``: conversations and their items, per API key."""

import time

from ..serving.metadata import check_metadata
from ..serving.pages import check_limit, list_object
from .. import errors
from ..errors import OpenAIError, bad_request, conversation_not_found
from ..http.rendering import json_response
from ..http.context import current, current_owner
from ..serving.responses.items import new_id, normalize
from ..storage.chat_completions import CursorNotFound


def _object(body) -> dict:
    # createConversationItems' body schema has no ``type: object``: null or a string pass it.
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", code="invalid_body")
    return body


async def _item_missing(database, owner: str, conversation_id: str, item_id: str) -> OpenAIError:
    """Which of the two is not there: the conversation (then that), or its item."""
    if await database.conversations.get(owner, conversation_id) is None:
        return conversation_not_found(conversation_id)
    return errors.missing("Item", item_id, "item_id")


async def create_conversation(body: dict | None = None):
    body = _object(body or {})
    metadata = check_metadata(body.get("metadata"))
    items = normalize(body.get("items"), "items")
    conversation = await current().database.conversations.create(
        current_owner(), new_id("conv"), int(time.time()), metadata, items
    )
    return json_response(conversation)


async def get_conversation(conversation_id: str):
    conversation = await current().database.conversations.get(current_owner(), conversation_id)
    if conversation is None:
        raise conversation_not_found(conversation_id)
    return json_response(conversation)


async def update_conversation(conversation_id: str, body: dict | None = None):
    if not body:  # no body (optional in the document; Connexion hands {}), yet metadata is required
        raise bad_request("Missing required parameter: 'metadata'.", "metadata", "missing_required_parameter")
    metadata = check_metadata(_object(body).get("metadata"))
    conversation = await current().database.conversations.update_metadata(current_owner(), conversation_id, metadata)
    if conversation is None:
        raise conversation_not_found(conversation_id)
    return json_response(conversation)


async def delete_conversation(conversation_id: str):
    if not await current().database.conversations.delete(current_owner(), conversation_id):
        raise conversation_not_found(conversation_id)
    return json_response({"id": conversation_id, "object": "conversation.deleted", "deleted": True})


async def create_conversation_items(conversation_id: str, body: dict, **_):
    items = normalize(_object(body).get("items"), "items")
    stored = await current().database.conversations.add_items(current_owner(), conversation_id, items)
    if stored is None:
        raise conversation_not_found(conversation_id)
    return json_response(list_object(stored, has_more=False))


async def list_conversation_items(
    conversation_id: str, limit: int = 20, after: str | None = None, order: str = "desc", **_
):
    try:
        page = await current().database.conversations.list_items(
            current_owner(), conversation_id, after=after, limit=check_limit(limit), order=order
        )
    except CursorNotFound:
        raise errors.not_found("item", after, "after") from None
    if page is None:
        raise conversation_not_found(conversation_id)
    return json_response(list_object(page.data, page.has_more))


async def get_conversation_item(conversation_id: str, item_id: str, **_):
    database, owner = current().database, current_owner()
    item = await database.conversations.get_item(owner, conversation_id, item_id)
    if item is None:
        raise await _item_missing(database, owner, conversation_id, item_id)
    return json_response(item)


async def delete_conversation_item(conversation_id: str, item_id: str):
    database, owner = current().database, current_owner()
    conversation = await database.conversations.delete_item(owner, conversation_id, item_id)
    if conversation is None:
        raise await _item_missing(database, owner, conversation_id, item_id)
    return json_response(conversation)
