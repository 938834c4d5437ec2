"""Tag ``Projects``: projects, their service accounts and API keys (serving/admin/projects.py),
their per-model rate limits; a project's users are people, which this service has none of."""

from ..http.context import caller, current
from ..http.rendering import json_response
from ..serving.admin import projects, rate_limits
from ..serving.admin.people import refused


async def list_projects(limit=20, after=None, include_archived=False):
    return json_response(await projects.list_projects(current(), limit, after, include_archived))


async def create_project(body):
    return json_response(await projects.create_project(current(), caller(), body))


async def retrieve_project(project_id):
    return json_response(projects.objects.project(await projects.project_of(current(), project_id)))


async def modify_project(project_id, body):
    return json_response(await projects.modify_project(current(), caller(), project_id, body))


async def archive_project(project_id):
    return json_response(await projects.archive_project(current(), caller(), project_id))


async def list_project_service_accounts(project_id, limit=20, after=None):
    return json_response(await projects.list_service_accounts(current(), project_id, limit, after))


async def create_project_service_account(project_id, body):
    return json_response(await projects.create_service_account(current(), caller(), project_id, body))


async def retrieve_project_service_account(project_id, service_account_id):
    return json_response(await projects.retrieve_service_account(current(), project_id, service_account_id))


async def update_project_service_account(project_id, service_account_id, body):
    return json_response(await projects.update_service_account(current(), caller(), project_id, service_account_id, body))


async def delete_project_service_account(project_id, service_account_id):
    return json_response(await projects.delete_service_account(current(), caller(), project_id, service_account_id))


async def list_project_api_keys(project_id, limit=20, after=None, owner_project_access=None):
    return json_response(await projects.list_project_keys(current(), project_id, limit, after, owner_project_access))


async def retrieve_project_api_key(project_id, api_key_id):
    return json_response(await projects.retrieve_project_key(current(), project_id, api_key_id))


async def delete_project_api_key(project_id, api_key_id):
    return json_response(await projects.delete_project_key(current(), caller(), project_id, api_key_id))


async def list_project_rate_limits(project_id, limit=100, after=None, before=None):
    return json_response(await rate_limits.list_limits(current(), project_id, limit, after, before))


async def update_project_rate_limits(project_id, rate_limit_id, body):
    return json_response(await rate_limits.update_limits(current(), caller(), project_id, rate_limit_id, body))


list_project_users = refused("list-project-users")
create_project_user = refused("create-project-user")
retrieve_project_user = refused("retrieve-project-user")
modify_project_user = refused("modify-project-user")
delete_project_user = refused("delete-project-user")
