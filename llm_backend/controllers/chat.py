"""Tag ``Chat``: chat completions, and the stored ones (OpenAI's API for them)."""

from ..backends.capabilities import CHAT
from ..budgets import check_lists
from ..serving import audio_input, chat_completions
from ..serving.metadata import check_metadata
from ..serving.lists import check_limit, list_object
from ..http.rendering import answer_response, json_response
from ..http.context import current, current_owner, query_metadata


async def create_chat_completion(body: dict):
    services = current()
    check_lists("createChatCompletion", body)
    check_metadata(body.get("metadata"))
    model_id = body["model"]
    backend = services.registry.serving(model_id, CHAT)
    messages = await audio_input.transcribed(services, model_id, body.get("messages"), body.get("prediction") is not None)
    answer = await backend.chat_completion(model_id, {**body, "messages": messages})
    store = bool(body.get("store"))
    if store or services.settings.store_all_chat_completions:
        answer = await chat_completions.record(
            answer,
            request=body,
            owner=current_owner(),
            store=store,
            services=services,
        )
    return answer_response(answer)


async def list_chat_completions(model: str | None = None, after: str | None = None, limit: int = 20, order: str = "asc", **_):
    metadata = check_metadata(query_metadata(), "metadata")
    page = await chat_completions.listed(current(), current_owner(), model, metadata, after, check_limit(limit), order)
    return json_response(list_object(page.data, page.has_more))


async def get_chat_completion(completion_id: str):
    return json_response(await chat_completions.stored(current(), current_owner(), completion_id))


async def update_chat_completion(completion_id: str, body: dict):
    metadata = check_metadata(body.get("metadata"))
    return json_response(await chat_completions.updated(current(), current_owner(), completion_id, metadata))


async def delete_chat_completion(completion_id: str):
    await chat_completions.delete(current(), current_owner(), completion_id)
    return json_response({"object": "chat.completion.deleted", "id": completion_id, "deleted": True})


async def get_chat_completion_messages(completion_id: str, after: str | None = None, limit: int = 20, order: str = "asc"):
    request = await chat_completions.stored_request(current(), current_owner(), completion_id)
    return json_response(chat_completions.messages_page(completion_id, request, after, check_limit(limit), order))
