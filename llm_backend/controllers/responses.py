"""Tag ``Responses``: create, retrieve, delete, cancel a response; list its input items."""

from ..http.context import current, current_owner
from ..http.rendering import json_response
from ..http.sse import status_stream
from ..serving.lists import check_limit, page
from ..serving.responses import cloud_tools, service, stored


async def create_response(body: dict):
    answer = await service.create(current(), current_owner(), body)
    rendered = json_response(answer) if isinstance(answer, dict) else status_stream(answer)
    dropped = cloud_tools.dropped(body)
    if dropped:
        # The hosted tools the model was not offered (it cannot run them): said, not silent.
        rendered.headers[cloud_tools.DROPPED_HEADER] = ",".join(dropped)
    return rendered


async def get_response(response_id: str, stream: bool | None = None, starting_after: int | None = None, **_):
    if stream:
        return status_stream(await stored.replay(current(), current_owner(), response_id, starting_after))
    return json_response(await stored.stored(current(), current_owner(), response_id))


async def delete_response(response_id: str):
    await stored.delete(current(), current_owner(), response_id)
    return json_response({"id": response_id, "object": "response.deleted", "deleted": True})


async def cancel_response(response_id: str):
    return json_response(await stored.cancel(current(), current_owner(), response_id))


async def list_input_items(response_id: str, limit: int = 20, order: str = "desc", after: str | None = None, **_):
    items = await stored.input_items(current(), current_owner(), response_id)
    return json_response(page(items, after, check_limit(limit), order))


# The ``?beta=true`` variants of the document share these routes; they are served alike.
beta_create_response = create_response
beta_get_response = get_response
beta_delete_response = delete_response
beta_cancel_response = cancel_response
beta_list_input_items = list_input_items
