"""The audit log is tamper-evident: REPLACE over an entry refused on SQLite, and an entry
altered, removed or forged around the triggers (by whoever owns the table) named by
``llm-backend audit verify``; appends from two replicas at once chain in one line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from llm_backend.cli import app
from llm_backend.storage import Database
from llm_backend.storage.audit_log import AuditFilter
from tests.support.audit_entries import SECRET
from tests.support.audit_entries import entries as _entries
from tests.support.audit_entries import keyed as _keyed

from .conftest import DATABASES
from .test_migrations import at_revision


def _verify_as_an_operator(url: str) -> subprocess.CompletedProcess:
    """``llm-backend audit verify`` as an operator runs it, on the database at ``url``."""
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "LLM_BACKEND_DATABASE_URL": url, "LLM_BACKEND_AUDIT_LOG_KEY": SECRET}
    return subprocess.run([sys.executable, "-m", "llm_backend", "audit", "verify"], capture_output=True, text=True, env=env, timeout=120)


def _verify(url: str, secret: str = SECRET):
    """The same command in-process (``returncode``, ``stdout``, ``stderr`` as above): a process
    of its own cost ~1.1 CPU-s a run, mostly imports; the entry point runs for real above."""
    ran = CliRunner().invoke(app, ["audit", "verify"], env={"LLM_BACKEND_DATABASE_URL": url, "LLM_BACKEND_AUDIT_LOG_KEY": secret})
    if ran.exception is not None and not isinstance(ran.exception, SystemExit):
        raise ran.exception  # a crash is not a verdict (the exit code 1 of a broken chain)
    ran.returncode = ran.exit_code
    return ran


def _around_the_triggers(db: Database, sql: str, **values) -> None:
    """``sql`` run as the table's owner would: the append-only triggers disabled (PostgreSQL)
    or dropped (SQLite) for it."""
    with db.engine.begin() as connection:
        if db.dialect == "postgresql":
            connection.execute(sa.text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change"))
        else:
            connection.execute(sa.text("DROP TRIGGER audit_log_no_update"))
            connection.execute(sa.text("DROP TRIGGER audit_log_no_delete"))
        connection.execute(sa.text(sql), values)


@pytest.fixture(params=DATABASES)
def keyed(request, new_migrated_url):
    db = _keyed(new_migrated_url(request.param))
    yield db
    db.dispose()


def test_insert_or_replace_over_an_entry_is_refused_on_sqlite(new_migrated_url):
    db = _keyed(new_migrated_url("sqlite"))
    try:
        db.audit_log.append(_entries(2))
        [first, second] = db.audit_log.page(AuditFilter(), None, None, 10)[0][::-1]
        for target in ("seq", "id"):  # a conflict on either unique column would delete the entry
            with pytest.raises(sa.exc.DBAPIError, match="append-only"), db.engine.begin() as connection:
                connection.execute(sa.text(
                    "INSERT OR REPLACE INTO audit_log (seq, id, type, effective_at, details) "
                    f"VALUES ({':seq' if target == 'seq' else 999}, :id, 'project.archived', 1, '{{}}')"
                ), {"seq": first.seq, "id": first.id if target == "id" else "audit_log-forged"})
        rows = db.audit_log.page(AuditFilter(), None, None, 10)[0][::-1]
        assert [(row.id, row.type, row.details) for row in rows] == [(r.id, r.type, r.details) for r in (first, second)]
        assert db.audit_log.verify().broken is None
    finally:
        db.dispose()


def test_a_clean_chain_verifies_with_its_count_and_head(keyed):
    keyed.audit_log.append(_entries(3))
    with keyed.sessions.begin() as session:  # an entry made in a change's transaction
        from llm_backend.storage.audit_log import append_in

        append_in(session, lambda changed: _entries(1, changed)[0], "in-a-change")
    done = _verify_as_an_operator(keyed.url)
    assert done.returncode == 0, done.stderr
    head = keyed.audit_log.page(AuditFilter(), None, None, 1)[0][0]
    assert done.stdout.strip() == f"audit log OK: 4 entries, head {head.chain}"
    assert SECRET not in done.stdout + done.stderr


def test_an_entry_altered_by_the_tables_owner_is_named(keyed):
    keyed.audit_log.append(_entries(3))
    second = keyed.audit_log.page(AuditFilter(), None, None, 10)[0][1]
    _around_the_triggers(keyed, "UPDATE audit_log SET actor_id = 'someone-else' WHERE id = :id", id=second.id)
    done = _verify(keyed.url)
    assert done.returncode == 1
    assert f"BROKEN at entry {second.id} (seq {second.seq}" in done.stderr and "altered" in done.stderr


def test_an_entry_forged_with_a_copied_seal_is_named(keyed):
    """A row written around the service, its seal copied from a genuine one: out of place."""
    keyed.audit_log.append(_entries(2))
    newest = keyed.audit_log.page(AuditFilter(), None, None, 1)[0][0]
    with keyed.engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO audit_log (id, type, effective_at, details, chain_index, chain) "
            "VALUES ('audit_log-forged', 'project.archived', 1, '{}', :index, :chain)"
        ), {"index": newest.chain_index + 5, "chain": newest.chain})
    done = _verify(keyed.url)
    assert done.returncode == 1 and "BROKEN at entry audit_log-forged" in done.stderr


def test_a_deleted_entry_is_named_by_the_one_after_it(keyed):
    keyed.audit_log.append(_entries(4))
    oldest_first = keyed.audit_log.page(AuditFilter(), None, None, 10)[0][::-1]
    _around_the_triggers(keyed, "DELETE FROM audit_log WHERE id = :id", id=oldest_first[1].id)
    done = _verify(keyed.url)
    assert done.returncode == 1
    assert f"BROKEN at entry {oldest_first[2].id}" in done.stderr and "1 entries removed before it" in done.stderr


def test_another_key_does_not_verify_the_chain(keyed):
    keyed.audit_log.append(_entries(1))
    assert "altered, or written without the audit log's key" in _verify(keyed.url, secret="another key").stderr


@pytest.mark.parametrize("kind", DATABASES)
def test_two_replicas_appending_at_once_chain_in_one_line(kind, new_migrated_url):
    """Two processes on one database (PostgreSQL: two replicas), 60 entries each at the same
    moment (single entries and pairs, as changes make them): one chain, every place taken once.
    Each starts appending when both have their database open (a line on stdin), not at a
    fixed time: under load an import could outlast a 3 s head start and the two not overlap."""
    url = new_migrated_url(kind)
    script = (
        "import sys\n"
        "from tests.support.audit_entries import entries, keyed\n"
        "db = keyed(sys.argv[1])\n"
        "db.engine.connect().close()\n"  # connected: what is left is the appends
        "print('ready', flush=True)\n"
        "sys.stdin.readline()\n"
        "for n in range(40):\n"
        "    db.audit_log.append(entries(1 + n % 2, sys.argv[2] + str(n)))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    replicas = [subprocess.Popen([sys.executable, "-c", script, url, name], env=env, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for name in ("a", "b")]
    try:
        for replica in replicas:
            assert replica.stdout.readline() == "ready\n", replica.stderr.read()
        for replica in replicas:
            replica.stdin.write("go\n")
            replica.stdin.flush()
        for replica in replicas:
            assert replica.wait(timeout=120) == 0, replica.stderr.read()
    finally:
        for replica in replicas:
            replica.kill()
            replica.communicate()
    db = _keyed(url)
    try:
        verdict = db.audit_log.verify()
        assert verdict.broken is None and verdict.count == 120
    finally:
        db.dispose()


def _entries_of_revision_0018(db: Database) -> None:
    """Three entries as 0018 wrote them (no chain), in plain SQL."""
    with db.engine.begin() as connection:
        for n, kind in enumerate(("project.created", "api_key.created", "project.archived")):
            connection.execute(sa.text(
                "INSERT INTO audit_log (id, type, effective_at, project_id, actor_id, actor, resource_id, details) "
                "VALUES (:id, :type, :at, 'proj_old', 'key_old', :actor, 'proj_old', :details)"
            ), {"id": f"audit_log-old{n}", "type": kind, "at": 1700000000 + n,
                "actor": '{"type": "api_key", "api_key": {"id": "key_old", "type": "user"}}',
                "details": '{"%s": {"id": "proj_old", "note": "caf\\u00e9 %d"}}' % (kind, n)})


@pytest.mark.parametrize("kind", DATABASES)
def test_entries_before_the_chain_are_sealed_in_order_at_upgrade(kind, new_database_url):
    url = new_database_url(kind)
    at_revision(url, "0018", _entries_of_revision_0018)
    db = _keyed(url)
    try:
        db.upgrade()
        db.audit_log.append(_entries(1))
        verdict = db.audit_log.verify()
        assert verdict.broken is None and verdict.count == 4
        oldest_first = db.audit_log.page(AuditFilter(), None, None, 10)[0][::-1]
        assert [row.chain_index for row in oldest_first] == [0, 1, 2, 3]
        assert oldest_first[0].details == {"project.created": {"id": "proj_old", "note": "café 0"}}
        if kind == "sqlite":  # the upgrade's own UPDATE left the triggers as they were, and added REPLACE's
            with pytest.raises(sa.exc.DBAPIError, match="append-only"), db.engine.begin() as connection:
                connection.execute(sa.text("UPDATE audit_log SET type = 'x' WHERE id = 'audit_log-old0'"))
            with pytest.raises(sa.exc.DBAPIError, match="append-only"), db.engine.begin() as connection:
                connection.execute(sa.text("REPLACE INTO audit_log (seq, id, type, effective_at, details) "
                                           "VALUES (1, 'audit_log-old0', 'x', 1, '{}')"))
        else:
            with pytest.raises(sa.exc.DBAPIError, match="append-only"), db.engine.begin() as connection:
                connection.execute(sa.text("UPDATE audit_log SET type = 'x' WHERE id = 'audit_log-old0'"))
    finally:
        db.dispose()


def test_a_service_role_that_does_not_own_the_table_appends_but_cannot_set_the_triggers_aside(new_migrated_url):
    """docs/ADMIN.md's PostgreSQL roles, as written there: the owner migrates; the service's
    role, granted INSERT and SELECT on ``audit_log``, appends and reads, and neither alters an
    entry nor disables a trigger."""
    import uuid

    from sqlalchemy.engine import make_url

    url = new_migrated_url("postgresql")
    role = "llmb_service_" + uuid.uuid4().hex[:8]
    owner = sa.create_engine(url)
    with owner.begin() as connection:
        for statement in (
            f"CREATE ROLE {role} LOGIN",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
            f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM {role}",
        ):
            connection.execute(sa.text(statement))
    owner.dispose()
    service = _keyed(make_url(url).set(username=role).render_as_string(hide_password=False))
    try:
        service.audit_log.append(_entries(2))
        for statement in ("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change",
                          "UPDATE audit_log SET actor_id = 'someone-else'", "DELETE FROM audit_log"):
            with pytest.raises(sa.exc.ProgrammingError, match="must be owner|permission denied"), service.engine.begin() as connection:
                connection.execute(sa.text(statement))
        verdict = service.audit_log.verify()
        assert verdict.broken is None and verdict.count == 2
    finally:
        service.dispose()
