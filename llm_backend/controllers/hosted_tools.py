"""Tag ``Hosted tools``: which hosted tools a project's requests may use (serving/admin/hosted_tools.py)."""

from ..http.context import caller, current
from ..http.rendering import json_response
from ..serving.admin import hosted_tools


async def retrieve_project_hosted_tool_permissions(project_id):
    return json_response(await hosted_tools.retrieve(current(), project_id))


async def update_project_hosted_tool_permissions(project_id, body):
    return json_response(await hosted_tools.update(current(), caller(), project_id, body))
