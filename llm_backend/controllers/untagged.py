"""Operations the document gives no tag: the Responses API's input token count and
compaction; the organisation's admin keys, spend limits and service accounts' keys."""

from ..http.context import caller, current, current_owner
from ..http.rendering import json_response
from ..serving.admin import admin_keys, projects, spend
from ..serving.responses import compaction, service


async def getinputtokencounts(body: dict | None = None):
    return json_response(await service.input_tokens(current(), current_owner(), body or {}))


async def compactconversation(body: dict | None = None):
    return json_response(await compaction.compact(current(), current_owner(), body or {}))


# The ``?beta=true`` variants of the document share these routes; they are served alike.
beta_getinputtokencounts = getinputtokencounts
beta_compactconversation = compactconversation


# The organisation's operations the document gives no tag (serving/admin/): admin keys,
# a service account's further keys.
async def admin_api_keys_list(after=None, order="asc", limit=20):
    return json_response(await admin_keys.list_keys(current(), after, order, limit))


async def admin_api_keys_create(body):
    return json_response(await admin_keys.create_key(current(), caller(), body))


async def admin_api_keys_get(key_id):
    return json_response(await admin_keys.retrieve_key(current(), key_id))


async def admin_api_keys_delete(key_id):
    return json_response(await admin_keys.delete_key(current(), caller(), key_id))


async def createan_apikeyforaserviceaccount(project_id, service_account_id, body=None):
    return json_response(await projects.create_service_account_key(current(), caller(), project_id, service_account_id, body or {}))


# Hard spend limits, the organisation's and a project's (serving/admin/spend.py).
async def getorganizationspendlimit():
    return json_response(await spend.get_limit(current()))


async def updateorganizationspendlimit(body):
    return json_response(await spend.set_limit(current(), caller(), body))


async def deleteorganizationspendlimit():
    return json_response(await spend.delete_limit(current(), caller()))


async def getprojectspendlimit(project_id):
    return json_response(await spend.get_limit(current(), project_id))


async def updateprojectspendlimit(project_id, body):
    return json_response(await spend.set_limit(current(), caller(), body, project_id))


async def deleteprojectspendlimit(project_id):
    return json_response(await spend.delete_limit(current(), caller(), project_id))
