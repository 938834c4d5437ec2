"""Conversations and their items as the API reads and writes them (``storage/conversations.py``).

Each operation is one store call in the worker thread (``Database.run``) and the 404 when
this owner has no such conversation or item, so that the controller never reaches the
database itself.
"""

from __future__ import annotations

import time

from .. import errors
from ..errors import OpenAIError
from ..json.types import Json
from ..storage.chat_completions import CursorNotFound, Page
from .responses.items import new_id
from ..errors import conversation_not_found
from .lists import list_order
from .services import Services



async def create(services: Services, owner: str, metadata: dict[str, str], items: list[Json]) -> Json:
    """A new conversation of ``owner`` with its first ``items``."""
    database = services.database
    return await database.run(database.conversations.create, owner, new_id("conv"), int(time.time()), metadata, items)


async def stored(services: Services, owner: str, conversation_id: str) -> Json:
    database = services.database
    return _found(await database.run(database.conversations.get, owner, conversation_id), conversation_id)


async def updated(services: Services, owner: str, conversation_id: str, metadata: dict[str, str]) -> Json:
    database = services.database
    return _found(await database.run(database.conversations.update_metadata, owner, conversation_id, metadata), conversation_id)


async def delete(services: Services, owner: str, conversation_id: str) -> None:
    database = services.database
    if not await database.run(database.conversations.delete, owner, conversation_id):
        raise conversation_not_found(conversation_id)


async def add_items(services: Services, owner: str, conversation_id: str, items: list[Json]) -> list[Json]:
    """The items as stored (ids may be renewed)."""
    database = services.database
    return _found(await database.run(database.conversations.add_items, owner, conversation_id, items), conversation_id)


async def listed_items(services: Services, owner: str, conversation_id: str, after: str | None, limit: int, order: str) -> Page:
    database = services.database
    try:
        page = await database.run(database.conversations.list_items, owner, conversation_id, after=after, limit=limit, order=list_order(order))
    except CursorNotFound as unknown:  # the ``after`` given
        raise errors.not_found("item", str(unknown), "after") from None
    return _found(page, conversation_id)


async def item(services: Services, owner: str, conversation_id: str, item_id: str) -> Json:
    database = services.database
    found = await database.run(database.conversations.get_item, owner, conversation_id, item_id)
    if found is None:
        raise await _item_missing(services, owner, conversation_id, item_id)
    return found


async def delete_item(services: Services, owner: str, conversation_id: str, item_id: str) -> Json:
    """Remove one item; the conversation as it is then."""
    database = services.database
    conversation = await database.run(database.conversations.delete_item, owner, conversation_id, item_id)
    if conversation is None:
        raise await _item_missing(services, owner, conversation_id, item_id)
    return conversation


async def _item_missing(services: Services, owner: str, conversation_id: str, item_id: str) -> OpenAIError:
    """Which of the two is not there: the conversation (then that), or its item."""
    database = services.database
    if await database.run(database.conversations.get, owner, conversation_id) is None:
        return conversation_not_found(conversation_id)
    return errors.missing("Item", item_id, "item_id")


def _found(value, conversation_id: str):
    if value is None:
        raise conversation_not_found(conversation_id)
    return value
