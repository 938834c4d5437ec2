"""Stored responses as the API reads them: retrieve, replay, cancel, delete, list input items.

The controller's side of ``storage/responses.py``: each operation is one store call in the
worker thread (``Database.run``) and the 404 when this owner has no such response, so that
controllers never reach the database themselves.
"""

from __future__ import annotations


from ...backends.base import Stream
from ...json.types import Json
from ..services import Services
from . import background
from .events import Event
from ...errors import response_not_found



async def stored(services: Services, owner: str, response_id: str) -> Json:
    """The owner's stored response as last shown, else a 404."""
    database = services.database
    response = await database.run(database.responses.get, owner, response_id)
    if response is None:
        raise response_not_found(response_id)
    return response


async def replay(services: Services, owner: str, response_id: str, after: int | None) -> Stream[Event]:
    """A stored background response's events after ``after`` (``background.replay``)."""
    response = await stored(services, owner, response_id)
    return await background.replay(services.database, owner, response_id, response, after)


async def cancel(services: Services, owner: str, response_id: str) -> Json:
    """Cancel a stored background response (``background.cancel``)."""
    response = await stored(services, owner, response_id)
    return await background.cancel(services.database, owner, response_id, response)


async def delete(services: Services, owner: str, response_id: str) -> None:
    """Delete the owner's stored response, else a 404."""
    database = services.database
    if not await database.run(database.responses.delete, owner, response_id):
        raise response_not_found(response_id)


async def input_items(services: Services, owner: str, response_id: str) -> list[Json]:
    """The input items of the response's turn, else a 404."""
    database = services.database
    items = await database.run(database.responses.input_items, owner, response_id)
    if items is None:
        raise response_not_found(response_id)
    return items
