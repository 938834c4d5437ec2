"""The Admin API (the organisation: projects, keys, limits, usage, the audit log), a family
whose parts are still in the layers' folders (``serving/admin/``, its controllers,
``storage/``): its registration. Vector stores' usage is sampled, and data past its
retention removed."""

from __future__ import annotations

import asyncio

from llm_backend.families.family import Family
from llm_backend.serving.services import Services


def _tasks(services: Services) -> list[asyncio.Task]:
    from llm_backend.serving.admin import retention, sampler  # with the app only (the registry: __init__.py)

    return [
        asyncio.create_task(sampler.keep(services), name="vector store sampling"),
        asyncio.create_task(retention.keep(services, services.settings.expiry_sweep_seconds), name="data retention"),
    ]


FAMILY = Family("admin", start=_tasks)
