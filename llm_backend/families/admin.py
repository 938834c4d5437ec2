"""The Admin API (the organisation: projects, keys, limits, usage, the audit log), a family
whose parts are still in the layers' folders (``serving/admin/``, its controllers,
``storage/``): its registration. Vector stores' usage is sampled, and data past its
retention removed.

Its operations (those an admin key is needed for) take Connexion's whole way, never the fast
lane: their controllers take its parameters. The organisation here is this service's
(docs/ADMIN.md), so an operation no controller answers is not sent upstream; only an operator
who asks (``admin_api: upstream``) sends them there, to act on the upstream organisation with
its key, but for the usage, which is this service's own."""

from __future__ import annotations

import asyncio

from llm_backend.families.family import Answered, Family
from llm_backend.serving.services import Services
from llm_backend.settings import Settings


def _tasks(services: Services) -> list[asyncio.Task]:
    from llm_backend.serving.admin import retention, sampler  # with the app only (the registry: __init__.py)

    return [
        asyncio.create_task(sampler.keep(services), name="vector store sampling"),
        asyncio.create_task(retention.keep(services, services.settings.expiry_sweep_seconds), name="data retention"),
    ]


def _answered(settings: Settings, document: dict, _: bool) -> Answered:
    from llm_backend.spec import adapter  # with the app only: the web stack

    operations = adapter.admin_operation_ids(document)
    if settings.admin_api == "upstream":
        usage = adapter.operation_ids_of(document, frozenset({"Usage"}))
        return Answered(forwarded=operations - usage, whole_way=operations)
    return Answered(kept=operations, whole_way=operations)


FAMILY = Family("admin", start=_tasks, answered=_answered)
