"""The organisation's admin keys (``/v1/organization/admin_api_keys``): managed admin keys,
made here with their value shown once; the static ones (``LLM_BACKEND_ADMIN_KEYS``) are
settings and are not listed. A deleted key stops at its next request, on every replica."""

from __future__ import annotations

from ... import errors
from ...auth import Principal
from ...json.types import Json
from ..lists import check_limit
from ..services import Services
from . import objects
from .audit import entry



async def list_keys(services: Services, after: str | None = None, order: str = "asc", limit: int = 20) -> Json:
    database = services.database
    try:
        infos, has_more = await database.run(database.admin_keys.list, after, check_limit(limit), order)
    except LookupError as missing:
        raise errors.not_found("admin API key", str(missing), "after") from None
    return objects.page([objects.admin_api_key(info) for info in infos], has_more)


async def create_key(services: Services, caller: Principal, body: Json) -> Json:
    audit = entry(caller, "tenant.admin_api_key.created", {"data": {"name": body["name"]}})
    database = services.database
    info, key = await database.run(database.admin_keys.create, body["name"], body.get("expires_in_seconds"), audit)
    return objects.admin_api_key(info, key)


async def retrieve_key(services: Services, key_id: str) -> Json:
    database = services.database
    info = await database.run(database.admin_keys.get, key_id)
    if info is None:
        raise errors.not_found("admin API key", key_id, "key_id")
    return objects.admin_api_key(info)


async def delete_key(services: Services, caller: Principal, key_id: str) -> Json:
    database = services.database
    if not await database.run(database.admin_keys.delete, key_id, entry(caller, "tenant.admin_api_key.deleted", {})):
        raise errors.not_found("admin API key", key_id, "key_id")
    return objects.deleted("organization.admin_api_key", key_id)
