"""Operations the document gives no tag: the Responses API's input token count and compaction."""

from ..http.context import current, current_owner
from ..http.rendering import json_response
from ..serving.responses import compaction, service


async def getinputtokencounts(body: dict | None = None):
    return json_response(await service.input_tokens(current(), current_owner(), body or {}))


async def compactconversation(body: dict | None = None):
    return json_response(await compaction.compact(current(), current_owner(), body or {}))


# The ``?beta=true`` variants of the document share these routes; they are served alike.
beta_getinputtokencounts = getinputtokencounts
beta_compactconversation = compactconversation
