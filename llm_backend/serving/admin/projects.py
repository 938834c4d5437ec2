"""Projects, their service accounts and their keys: the Admin API's ``Projects`` operations.

A project is a tenant (docs/ADMIN.md): its keys see its objects. Archiving one stops its
keys at their next request on every replica (managed keys at once; static keys within
``storage.projects.ARCHIVED_CHECK_INTERVAL`` on another replica) and nothing new is made in
it; it stays listed (``include_archived``) and its objects stay stored. Creating a service
account answers its key once; deleting it revokes every key it has.
"""

from __future__ import annotations

from ... import errors
from ...auth import Principal
from ...json.types import Json
from ...storage.service_accounts import ArchivedProject
from ..lists import check_limit
from ..services import Services
from . import objects
from .audit import CHANGED, entry
from .errors import archived_project, no_project



async def project_of(services: Services, project_id: str):
    """The project (archived or not), else 404."""
    database = services.database
    row = await database.run(database.projects.get, project_id)
    if row is None:
        raise no_project(project_id)
    return row


def _cursor(missing: LookupError, kind: str) -> errors.OpenAIError:
    return errors.not_found(kind, str(missing), "after")


async def list_projects(services: Services, limit: int = 20, after: str | None = None, include_archived: bool = False) -> Json:
    database = services.database
    try:
        rows, has_more = await database.run(database.projects.list, after, check_limit(limit), bool(include_archived))
    except LookupError as missing:
        raise _cursor(missing, "project") from None
    return objects.page([objects.project(row) for row in rows], has_more)


async def create_project(services: Services, caller: Principal, body: Json) -> Json:
    name = body["name"]
    audit = entry(caller, "project.created", {"data": {"name": name, "title": name}}, project=CHANGED)
    database = services.database
    return objects.project(await database.run(database.projects.create, name, audit))


async def modify_project(services: Services, caller: Principal, project_id: str, body: Json) -> Json:
    row = await project_of(services, project_id)
    changes = {"name": body["name"]} if body.get("name") is not None else {}
    if not changes:
        return objects.project(row)
    audit = entry(caller, "project.updated", {"changes_requested": {"title": changes["name"]}}, project=row)
    database = services.database
    return objects.project(await database.run(database.projects.change, project_id, changes, audit))


async def archive_project(services: Services, caller: Principal, project_id: str) -> Json:
    row = await project_of(services, project_id)
    database = services.database
    archived = await database.run(database.projects.archive, project_id, entry(caller, "project.archived", {}, project=row))
    return objects.project(archived)


# --- service accounts ------------------------------------------------------------------------


async def list_service_accounts(services: Services, project_id: str, limit: int = 20, after: str | None = None) -> Json:
    await project_of(services, project_id)
    database = services.database
    try:
        rows, has_more = await database.run(database.service_accounts.list, project_id, after, check_limit(limit))
    except LookupError as missing:
        raise _cursor(missing, "service account") from None
    return objects.page([objects.service_account(row) for row in rows], has_more)


async def create_service_account(services: Services, caller: Principal, project_id: str, body: Json) -> Json:
    project = await project_of(services, project_id)
    with_key = not body.get("create_service_account_only")
    audit = entry(caller, "service_account.created", {"data": {"role": "member" if with_key else "none"}}, project=project)
    key_audit = entry(caller, "api_key.created", {"data": {"scopes": []}}, project=project)
    database = services.database
    try:
        account, info, key = await database.run(database.service_accounts.create, project_id, body["name"], with_key, audit, key_audit)
    except ArchivedProject:
        raise archived_project(project_id) from None
    shown = objects.service_account(account)
    shown["api_key"] = objects.service_account_key(info, key) if info is not None and key is not None else None
    return shown


async def service_account_of(services: Services, project_id: str, account_id: str):
    await project_of(services, project_id)
    database = services.database
    account = await database.run(database.service_accounts.get, project_id, account_id)
    if account is None:
        raise errors.not_found("service account", account_id, "service_account_id")
    return account


async def retrieve_service_account(services: Services, project_id: str, account_id: str) -> Json:
    return objects.service_account(await service_account_of(services, project_id, account_id))


async def update_service_account(services: Services, caller: Principal, project_id: str, account_id: str, body: Json) -> Json:
    account = await service_account_of(services, project_id, account_id)
    changes = {name: body[name] for name in ("name", "role") if body.get(name) is not None}
    if not changes:
        return objects.service_account(account)
    project = await project_of(services, project_id)
    audit = entry(caller, "service_account.updated", {"changes_requested": changes}, project=project)
    database = services.database
    updated = await database.run(database.service_accounts.update, project_id, account_id, changes, audit)
    if updated is None:
        raise errors.not_found("service account", account_id, "service_account_id")
    return objects.service_account(updated)


async def delete_service_account(services: Services, caller: Principal, project_id: str, account_id: str) -> Json:
    project = await project_of(services, project_id)
    database = services.database
    audit = entry(caller, "service_account.deleted", {}, project=project)
    if not await database.run(database.service_accounts.delete, project_id, account_id, audit):
        raise errors.not_found("service account", account_id, "service_account_id")
    return objects.deleted("organization.project.service_account", account_id)


async def create_service_account_key(services: Services, caller: Principal, project_id: str, account_id: str, body: Json) -> Json:
    if body.get("scopes"):
        # Keys here reach everything their project may: a scope would be accepted and ignored.
        raise errors.bad_request("API key scopes are not supported here: a key reaches all of its project.", "scopes", "unsupported_parameter")
    project = await project_of(services, project_id)
    audit = entry(caller, "api_key.created", {"data": {"scopes": []}}, project=project)
    database = services.database
    try:
        made = await database.run(database.service_accounts.add_key, project_id, account_id, body.get("name"), audit)
    except ArchivedProject:
        raise archived_project(project_id) from None
    if made is None:
        raise errors.not_found("service account", account_id, "service_account_id")
    return objects.service_account_key(*made)


# --- the project's keys ---------------------------------------------------------------------


async def _shown_keys(services: Services, infos: list) -> list[Json]:
    database = services.database
    accounts = await database.run(database.service_accounts.accounts, {info.service_account_id for info in infos if info.service_account_id})
    return [objects.project_api_key(info, accounts.get(info.service_account_id)) for info in infos]


async def list_project_keys(
    services: Services, project_id: str, limit: int = 20, after: str | None = None, owner_project_access: str | None = None
) -> Json:
    await project_of(services, project_id)
    if owner_project_access == "inactive":
        return objects.page([], False)  # every key here belongs to a live service account of its project
    database = services.database
    try:
        infos, has_more = await database.run(database.service_accounts.keys, project_id, after, check_limit(limit))
    except LookupError as missing:
        raise _cursor(missing, "API key") from None
    return objects.page(await _shown_keys(services, infos), has_more)


async def retrieve_project_key(services: Services, project_id: str, key_id: str) -> Json:
    await project_of(services, project_id)
    database = services.database
    info = await database.run(database.service_accounts.key, project_id, key_id)
    if info is None:
        raise errors.not_found("API key", key_id, "api_key_id")
    return (await _shown_keys(services, [info]))[0]


async def delete_project_key(services: Services, caller: Principal, project_id: str, key_id: str) -> Json:
    project = await project_of(services, project_id)
    database = services.database
    audit = entry(caller, "api_key.deleted", {}, project=project)
    if not await database.run(database.service_accounts.delete_key, project_id, key_id, audit):
        raise errors.not_found("API key", key_id, "api_key_id")
    return objects.deleted("organization.project.api_key", key_id)
