"""Tag ``Responses``: create, retrieve, delete, cancel a response; list its input items."""

from ..errors import response_not_found
from ..http.context import current, current_owner
from ..http.rendering import json_response
from ..http.sse import status_stream
from ..serving.pages import check_limit, page
from ..serving.responses import background, client_tools, service


async def create_response(body: dict):
    answer = await service.create(current(), current_owner(), body)
    rendered = json_response(answer) if isinstance(answer, dict) else status_stream(answer)
    dropped = client_tools.dropped(body)
    if dropped:
        # The hosted tools the model was not offered (it cannot run them): said, not silent.
        rendered.headers[client_tools.DROPPED_HEADER] = ",".join(dropped)
    return rendered


async def _stored(response_id: str) -> dict:
    response = await current().database.responses.get(current_owner(), response_id)
    if response is None:
        raise response_not_found(response_id)
    return response


async def get_response(response_id: str, stream: bool | None = None, starting_after: int | None = None, **_):
    stored = await _stored(response_id)
    if stream:
        events = await background.replay(current().database, current_owner(), response_id, stored, starting_after)
        return status_stream(events)
    return json_response(stored)


async def delete_response(response_id: str):
    if not await current().database.responses.delete(current_owner(), response_id):
        raise response_not_found(response_id)
    return json_response({"id": response_id, "object": "response.deleted", "deleted": True})


async def cancel_response(response_id: str):
    stored = await _stored(response_id)
    return json_response(await background.cancel(current().database, current_owner(), response_id, stored))


async def list_input_items(response_id: str, limit: int = 20, order: str = "desc", after: str | None = None, **_):
    items = await current().database.responses.input_items(current_owner(), response_id)
    if items is None:
        raise response_not_found(response_id)
    return json_response(page(items, after, check_limit(limit), order))


# The ``?beta=true`` variants of the document share these routes; they are served alike.
beta_create_response = create_response
beta_get_response = get_response
beta_delete_response = delete_response
beta_cancel_response = cancel_response
beta_list_input_items = list_input_items
