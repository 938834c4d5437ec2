"""Tag ``Data retention``: how long the organisation's and each project's stored objects are
kept (serving/admin/retention.py)."""

from ..http.context import caller, current
from ..http.rendering import json_response
from ..serving.admin import retention


async def retrieve_organization_data_retention():
    return json_response(await retention.organization(current()))


async def update_organization_data_retention(body):
    return json_response(await retention.set_organization(current(), caller(), body))


async def retrieve_project_data_retention(project_id):
    return json_response(await retention.project(current(), project_id))


async def update_project_data_retention(project_id, body):
    return json_response(await retention.set_project(current(), caller(), project_id, body))
