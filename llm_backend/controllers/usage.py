"""Tag ``Usage``: OpenAI's organization usage operations, for admin keys (their security
scheme, ``AdminApiKeyAuth``, asks for one: http/security.py) over serving/usage.py; costs
over serving/admin/costs.py."""

from ..http.context import current
from ..http.rendering import json_response
from ..serving.admin import costs
from ..serving.usage import usage_page
from ..storage.usage import (
    AUDIO_SPEECHES,
    AUDIO_TRANSCRIPTIONS,
    COMPLETIONS,
    EMBEDDINGS,
    FILE_SEARCH_CALLS,
    IMAGES,
    MODERATIONS,
    VECTOR_STORES,
)


async def _answer(operation: str | None, **parameters):
    known = (
        "start_time", "end_time", "bucket_width", "group_by", "api_key_ids", "models", "limit", "page",
        "project_ids", "user_ids", "batch",
    )
    arguments = {name: value for name, value in parameters.items() if name in known and value is not None}
    return json_response(await usage_page(current(), operation, **arguments))


async def usage_completions(**parameters):
    return await _answer(COMPLETIONS, **parameters)


async def usage_embeddings(**parameters):
    return await _answer(EMBEDDINGS, **parameters)


async def usage_moderations(**parameters):
    return await _answer(MODERATIONS, **parameters)


async def usage_audio_speeches(**parameters):
    return await _answer(AUDIO_SPEECHES, **parameters)


async def usage_audio_transcriptions(**parameters):
    return await _answer(AUDIO_TRANSCRIPTIONS, **parameters)


async def usage_file_search_calls(**parameters):
    return await _answer(FILE_SEARCH_CALLS, **parameters)


async def usage_vector_stores(**parameters):
    return await _answer(VECTOR_STORES, **parameters)


async def usage_images(**parameters):
    return await _answer(IMAGES, **parameters)


# Usage this service never has (no code interpreter or web search here): the same buckets, empty.
async def usage_code_interpreter_sessions(**parameters):
    return await _answer(None, **parameters)


usage_web_search_calls = usage_code_interpreter_sessions


async def usage_costs(start_time, end_time=None, bucket_width="1d", project_ids=None, api_key_ids=None, group_by=None, limit=None, page=None):
    return json_response(
        await costs.costs_page(current(), start_time, end_time, bucket_width, project_ids, api_key_ids, group_by, limit, page)
    )
