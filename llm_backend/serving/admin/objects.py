"""The control plane's objects as OpenAI's Admin API shows them."""

from __future__ import annotations

from datetime import datetime

from ...json.types import Json
from ...storage.api_keys import ApiKeyInfo



def unix(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


def project(row) -> Json:
    return {
        "id": row.id,
        "object": "organization.project",
        "name": row.name,
        "created_at": row.created_at,
        "archived_at": row.archived_at,
        "status": "archived" if row.archived_at is not None else "active",
        "external_key_id": None,
    }


def service_account(row) -> Json:
    return {
        "object": "organization.project.service_account",
        "id": row.id,
        "name": row.name,
        "role": row.role,
        "created_at": row.created_at,
    }


def service_account_key(info: ApiKeyInfo, key: str) -> Json:
    """A new key, its value shown this once."""
    return {
        "object": "organization.project.service_account.api_key",
        "value": key,
        "name": info.name,
        "created_at": unix(info.created_at),
        "id": info.id,
    }


def project_api_key(info: ApiKeyInfo, account) -> Json:
    owner: Json = {"type": "service_account"}
    if account is not None:
        owner["service_account"] = service_account(account)
    return {
        "object": "organization.project.api_key",
        "redacted_value": info.redacted_value,
        "name": info.name,
        "created_at": unix(info.created_at),
        "last_used_at": unix(info.last_used_at),
        "id": info.id,
        "owner_project_access": "active",
        "owner": owner,
    }


def admin_api_key(info: ApiKeyInfo, key: str | None = None) -> Json:
    shown = {
        "object": "organization.admin_api_key",
        "id": info.id,
        "name": info.name,
        "redacted_value": info.redacted_value,
        "created_at": unix(info.created_at),
        "expires_at": unix(info.expires_at),
        "last_used_at": unix(info.last_used_at),
        # No people here: the organisation itself owns its admin keys.
        "owner": {"type": "organization", "role": "owner"},
    }
    if key is not None:
        shown["value"] = key
    return shown


def deleted(kind: str, object_id: str) -> Json:
    return {"object": f"{kind}.deleted", "id": object_id, "deleted": True}


def page(data: list[Json], has_more: bool) -> Json:
    """OpenAI's list envelope for the Admin API (``first_id``/``last_id`` null when empty)."""
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }
