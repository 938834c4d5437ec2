"""No entry of the audit log is removed by an insert that collides with it (issue #56, item 7):
on SQLite ``INSERT OR REPLACE`` deletes the row it collides with on any unique column without
firing DELETE triggers, and 0019's refusal looked at ``seq`` and ``id`` only, so a REPLACE on
an entry's place in the chain (``chain_index``) removed it, which only ``audit verify``
showed (revision 0021). PostgreSQL has no REPLACE, and its ``ON CONFLICT`` removes nothing:
checked there too, the same statements as a table's writer would send them."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from llm_backend.storage.audit_log import AuditFilter

from .test_audit_chain import _entries, _keyed

FORGED = {"id": "audit_log-forged", "type": "project.archived", "effective_at": 1, "details": "{}", "chain": "0" * 64}


def _oldest_first(db) -> list:
    return db.audit_log.page(AuditFilter(), None, None, 100)[0][::-1]


def _unchanged(db, before: list) -> None:
    after = _oldest_first(db)
    assert [(row.seq, row.id, row.chain_index, row.chain) for row in after] == [
        (row.seq, row.id, row.chain_index, row.chain) for row in before
    ]
    assert db.audit_log.verify().broken is None


def test_insert_or_replace_on_an_entrys_place_in_the_chain_is_refused_on_sqlite(new_migrated_url):
    db = _keyed(new_migrated_url("sqlite"))
    try:
        db.audit_log.append(_entries(3))
        before = _oldest_first(db)
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), db.engine.begin() as connection:
            connection.execute(sa.text(
                "INSERT OR REPLACE INTO audit_log (id, type, effective_at, details, chain_index, chain) "
                "VALUES (:id, :type, :effective_at, :details, :place, :chain)"
            ), {**FORGED, "place": before[1].chain_index})
        _unchanged(db, before)
    finally:
        db.dispose()


def test_a_database_upgraded_from_0020_refuses_it_too(new_database_url):
    url = new_database_url("sqlite")
    old = _keyed(url)
    old.upgrade("0020")
    old.audit_log.append(_entries(2))
    old.dispose()
    db = _keyed(url)
    try:
        db.upgrade()
        before = _oldest_first(db)
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), db.engine.begin() as connection:
            connection.execute(sa.text(
                "REPLACE INTO audit_log (id, type, effective_at, details, chain_index, chain) "
                "VALUES (:id, :type, :effective_at, :details, 0, :chain)"
            ), FORGED)
        _unchanged(db, before)
    finally:
        db.dispose()


def test_postgresqls_on_conflict_on_an_entrys_place_removes_nothing(new_migrated_url):
    db = _keyed(new_migrated_url("postgresql"))
    try:
        db.audit_log.append(_entries(3))
        before = _oldest_first(db)
        insert = (
            "INSERT INTO audit_log (id, type, effective_at, details, chain_index, chain) "
            "VALUES (:id, :type, :effective_at, CAST(:details AS JSON), :place, :chain) ON CONFLICT (chain_index) "
        )
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), db.engine.begin() as connection:
            connection.execute(sa.text(insert + "DO UPDATE SET id = EXCLUDED.id"), {**FORGED, "place": before[1].chain_index})
        with db.engine.begin() as connection:
            connection.execute(sa.text(insert + "DO NOTHING"), {**FORGED, "place": before[1].chain_index})
        _unchanged(db, before)
    finally:
        db.dispose()
