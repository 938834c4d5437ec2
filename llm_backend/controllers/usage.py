"""Tag ``Usage``: OpenAI's organization usage operations, for admin keys (their security
scheme, ``AdminApiKeyAuth``, asks for one: http/security.py) over serving/usage.py."""

from ..http.context import current
from ..http.rendering import json_response
from ..serving.usage import usage_page
from ..storage.usage import COMPLETIONS, EMBEDDINGS, MODERATIONS


async def _answer(operation: str | None, **parameters):
    known = (
        "start_time", "end_time", "bucket_width", "group_by", "api_key_ids", "models", "limit", "page",
        "project_ids", "user_ids", "batch",
    )
    arguments = {name: value for name, value in parameters.items() if name in known and value is not None}
    return json_response(await usage_page(current().database, operation, **arguments))


async def usage_completions(**parameters):
    return await _answer(COMPLETIONS, **parameters)


async def usage_embeddings(**parameters):
    return await _answer(EMBEDDINGS, **parameters)


async def usage_moderations(**parameters):
    return await _answer(MODERATIONS, **parameters)


# Usage this service never has: the same buckets, empty.
async def usage_audio_speeches(**parameters):
    return await _answer(None, **parameters)


usage_audio_transcriptions = usage_code_interpreter_sessions = usage_file_search_calls = usage_audio_speeches
usage_images = usage_vector_stores = usage_web_search_calls = usage_costs = usage_audio_speeches
