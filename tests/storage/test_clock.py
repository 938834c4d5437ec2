"""The database's clock (``storage/clock.py``) in statements: each lease renders its own SQL,
and a statement using one is compiled once, then taken from SQLAlchemy's cache (an idle
batch runner's claim compiled its query on every tick: most of an idle server's CPU)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.engine.default import CACHE_HIT, CACHE_MISS

from llm_backend.storage.clock import database_now

LEASES = (3600, -3600)


def test_each_lease_is_its_own_statement_compiled_once(database):
    with database.engine.connect() as connection:
        first = [connection.execute(select(database_now(seconds))) for seconds in LEASES]
        again = [connection.execute(select(database_now(seconds))) for seconds in LEASES]
    assert [result.context.cache_hit for result in first] == [CACHE_MISS, CACHE_MISS]  # one entry a lease
    assert [result.context.cache_hit for result in again] == [CACHE_HIT, CACHE_HIT]
    ahead, behind = (result.scalar_one() for result in again)  # each its own lease, not the other's SQL
    assert abs(ahead - behind - timedelta(hours=2)) < timedelta(seconds=5)
