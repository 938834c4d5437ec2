"""Tag ``Chat``: chat completions, and the stored ones (OpenAI's API for them)."""

from ..budgets import check_lists
from ..errors import chat_completion_not_found as not_found
from ..serving import audio_input, chat_completions
from ..serving.metadata import check_metadata
from ..serving.pages import check_limit, list_object
from ..http.rendering import answer_response, json_response
from ..http.context import current, current_owner, query_metadata
from ..storage.chat_completions import CursorNotFound


async def create_chat_completion(body: dict):
    services = current()
    check_lists("createChatCompletion", body)
    check_metadata(body.get("metadata"))
    model_id = body["model"]
    backend = services.registry.backend_for(model_id)
    messages = await audio_input.transcribed(services, model_id, body.get("messages"), body.get("prediction") is not None)
    answer = await backend.chat_completion(model_id, {**body, "messages": messages})
    store = bool(body.get("store"))
    if store or services.settings.store_all_chat_completions:
        answer = await chat_completions.record(
            answer,
            request=body,
            owner=current_owner(),
            store=store,
            chat_completions=services.database.chat_completions,
        )
    return answer_response(answer)


async def list_chat_completions(model: str | None = None, after: str | None = None, limit: int = 20, order: str = "asc", **_):
    metadata = check_metadata(query_metadata(), "metadata")
    try:
        page = await current().database.chat_completions.list(
            current_owner(), model=model, metadata=metadata, after=after, limit=check_limit(limit), order=order
        )
    except CursorNotFound:
        raise not_found(after, param="after") from None
    return json_response(list_object(page.data, page.has_more))


async def get_chat_completion(completion_id: str):
    completion = await current().database.chat_completions.get(current_owner(), completion_id)
    if completion is None:
        raise not_found(completion_id)
    return json_response(completion)


async def update_chat_completion(completion_id: str, body: dict):
    metadata = check_metadata(body.get("metadata"))
    completion = await current().database.chat_completions.update_metadata(current_owner(), completion_id, metadata)
    if completion is None:
        raise not_found(completion_id)
    return json_response(completion)


async def delete_chat_completion(completion_id: str):
    if not await current().database.chat_completions.delete(current_owner(), completion_id):
        raise not_found(completion_id)
    return json_response({"object": "chat.completion.deleted", "id": completion_id, "deleted": True})


async def get_chat_completion_messages(completion_id: str, after: str | None = None, limit: int = 20, order: str = "asc"):
    request = await current().database.chat_completions.request(current_owner(), completion_id)
    if request is None:
        raise not_found(completion_id)
    return json_response(chat_completions.messages_page(completion_id, request, after, check_limit(limit), order))
