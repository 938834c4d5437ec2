"""Vector stores' storage sampled into usage and spend (serving/admin/sampler.py), on
SQLite and PostgreSQL: one sample per hour whatever the replicas, priced per GB-day."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from llm_backend.backends.registry import ModelRegistry
from llm_backend.serving.admin import sampler
from llm_backend.serving.metering.meter import SPEND, SpendMeter, month_start, spend_owner
from llm_backend.serving.services import Services
from llm_backend.settings import Settings
from llm_backend.storage.usage import VECTOR_STORES

GB = 1_000_000_000


def _store_with_bytes(database, owner: str, kept: int) -> None:
    with database.engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO vector_stores (id, owner, created_at, last_active_at, metadata, generation) VALUES (:id, :owner, 1, 1, '{}', 0)"
        ), {"id": f"vs_{owner}", "owner": owner})
        seq = connection.execute(sa.text("SELECT seq FROM vector_stores WHERE id = :id"), {"id": f"vs_{owner}"}).scalar()
        connection.execute(sa.text(
            "INSERT INTO vector_store_files (vector_store_seq, file_id, owner, status, attributes, chunking_strategy, usage_bytes, created_at)"
            " VALUES (:seq, 'file-1', :owner, 'completed', '{}', '{}', :bytes, 1)"
        ), {"seq": seq, "owner": owner, "bytes": kept})


def test_each_projects_vector_store_bytes_are_sampled_once_an_hour_and_priced(database):
    _store_with_bytes(database, "proj_a", 3 * GB)
    settings = Settings(prices=[{"model": "vector_stores", "vector_store_gb_day": 0.24}])
    services = Services(settings=settings, registry=ModelRegistry([]), database=database, spend_meter=SpendMeter(settings, database))
    hour = 1_800_000_000 // 3600 * 3600

    async def twice() -> list[bool]:
        done = [await sampler.sample(services, hour), await sampler.sample(services, hour)]  # a second replica, the same hour
        await services.spend_meter.settled()
        await database.usage.flush()
        return done

    assert asyncio.run(twice()) == [True, False]
    [totals] = database.usage.totals(0, 2**40, operation=VECTOR_STORES, group_by=("project_id",))
    assert (totals.group["project_id"], totals.bytes, totals.minutes) == ("proj_a", 3 * GB, 1)
    month = month_start()
    spent = database.rate_counters.read([(spend_owner("proj_a"), SPEND, month)])[(spend_owner("proj_a"), SPEND, month)]
    assert spent == 3 * 0.24 / 24 * 1_000_000  # an hour of 3 GB at $0.24 a GB-day, in micro-dollars
