"""Operations the document gives no tag: the Responses API's input token count."""

from ..responses import json_response
from ..serving.responses import service
from ..services import current, current_owner


async def getinputtokencounts(body: dict | None = None):
    return json_response(await service.input_tokens(current(), current_owner(), body or {}))
