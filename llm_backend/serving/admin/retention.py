"""Data retention (``/organization/data_retention``, ``/organization/projects/{id}/data_retention``):
OpenAI's retention types, given a meaning here - how long a project's stored objects are kept.

| type | a project's stored objects are deleted |
| --- | --- |
| `zero_data_retention`, `enhanced_zero_data_retention` | at the first sweep after they are made (nothing kept) |
| `modified_abuse_monitoring`, `enhanced_modified_abuse_monitoring` | ``data_retention_seconds`` after they are made (30 days) |
| `none` (a project's) | never: kept until deleted |
| `organization_default` (a project's, the default) | as the organisation's type says; never, when it has none |

The organisation has no type until one is set (its retrieve answers 404: objects are kept
until deleted). Every ``expiry_sweep_seconds`` each replica deletes, per project, the
chat completions, responses (finished ones), conversations, files (their bytes too) and
vector stores made before the project's period, through each family's own delete (a
deletion is one conditional transaction: replicas sweeping together delete each object once).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ... import errors
from ...auth import Principal
from ...storage.files import FileStore
from ..services import Services
from .audit import entry
from .projects import project_of

log = logging.getLogger(__name__)
ZERO = ("zero_data_retention", "enhanced_zero_data_retention")
MODIFIED = ("modified_abuse_monitoring", "enhanced_modified_abuse_monitoring")
BATCH = 500  # objects of a family deleted per project and sweep: a sweep's work is bounded


async def organization(services: Services) -> dict[str, Any]:
    database = services.database
    found = await database.run(database.retention.organization_type)
    if found is None:
        raise errors.not_found("data retention control", "organization", "data_retention")
    return {"object": "organization.data_retention", "type": found}


async def set_organization(services: Services, caller: Principal, body: dict[str, Any]) -> dict[str, Any]:
    retention_type = body["retention_type"]
    audit = entry(caller, "organization.updated", {"changes_requested": {"data_retention": retention_type}})
    database = services.database
    await database.run(database.retention.set_organization_type, retention_type, audit)
    return {"object": "organization.data_retention", "type": retention_type}


async def project(services: Services, project_id: str) -> dict[str, Any]:
    return {"object": "project.data_retention", "type": (await project_of(services, project_id)).retention}


async def set_project(services: Services, caller: Principal, project_id: str, body: dict[str, Any]) -> dict[str, Any]:
    row = await project_of(services, project_id)
    retention_type = body["retention_type"]
    audit = entry(caller, "project.updated", {"changes_requested": {"data_retention": retention_type}}, project=row)
    database = services.database
    await database.run(database.projects.change, project_id, {"retention": retention_type}, audit)
    return {"object": "project.data_retention", "type": retention_type}


def period(retention_type: str | None, organization_type: str | None, modified_seconds: float) -> float | None:
    """Seconds a project of ``retention_type`` keeps its objects (None: until deleted)."""
    if retention_type == "organization_default":
        retention_type = organization_type
    if retention_type in ZERO:
        return 0.0
    if retention_type in MODIFIED:
        return modified_seconds
    return None


async def sweep_once(services: Services) -> int:
    """One sweep: every project's objects past its period deleted; how many."""
    database = services.database
    organization_type = await database.run(database.retention.organization_type)
    kept = await database.run(database.projects.retention_types)
    deleted = 0
    now = time.time()
    for project_id, retention_type in kept.items():
        seconds = period(retention_type, organization_type, services.settings.data_retention_seconds)
        if seconds is None:
            continue
        cutoff = int(now - seconds) + (1 if seconds == 0 else 0)  # zero: everything made up to now
        found = await database.run(database.retention.older_than, project_id, cutoff, BATCH)
        deleted += await _delete(services, project_id, found)
    return deleted


async def _delete(services: Services, owner: str, found: dict[str, list[str]]) -> int:
    database = services.database
    files = FileStore(database, services.settings.data_dir / "files")
    count = 0
    for object_id in found["chat_completions"]:
        count += await database.run(database.chat_completions.delete, owner, object_id)
    for object_id in found["responses"]:
        count += await database.run(database.responses.delete, owner, object_id)
    for object_id in found["conversations"]:
        count += await database.run(database.conversations.delete, owner, object_id)
    for object_id in found["files"]:
        count += await database.run(files.delete, owner, object_id)
    for object_id in found["vector_stores"]:
        store_seq = await database.run(database.vector_index.delete_store, owner, object_id)
        if store_seq is not None:
            count += 1
            if "retrieval" in vars(services):  # its vectors, if this process searched it
                services.retrieval.searcher.forget(store_seq)
    return count


async def keep(services: Services, interval: float) -> None:
    """Sweep for the process's life (a task of the app's lifespan)."""
    while True:
        try:
            deleted = await sweep_once(services)
            if deleted:
                log.info("objects past their project's data retention deleted", extra={"deleted": deleted})
        except Exception:  # a database outage must not end the sweeper: try again later
            log.exception("data retention sweep failed")
        await asyncio.sleep(interval)
