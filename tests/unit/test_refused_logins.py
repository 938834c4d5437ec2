"""Refused admin logins in the audit log (``login.failed``, http/refused_logins.py;
issue #56, item 7): bounded a minute so that a flood cannot fill the database, in budgets of
their own, so that 60 keyless refusals a minute no longer leave a valid key's probing (or a
wrong key's) unlogged. On a real SQLite database, the entries as the audit log lists them."""

from __future__ import annotations

import asyncio

import pytest

from llm_backend import errors
from llm_backend.auth import Principal
from llm_backend.http.refused_logins import REFUSALS_PER_MINUTE, RefusedLogins
from llm_backend.storage import Database
from llm_backend.storage.audit_log import AuditFilter
from tests.support.admin import same_minute

PROBER = Principal("proj_tenant", key_id="key_prober")  # a valid key of a project, not an admin


@pytest.fixture
def database(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'audit.db'}")
    db.upgrade()
    yield db
    db.dispose()


def logged(database: Database, *refusals: tuple[Principal | None, errors.OpenAIError]) -> list:
    """The ``login.failed`` entries that ``refusals``, in this order and one minute, leave."""

    async def refuse() -> None:
        logins = RefusedLogins(database)
        for principal, error in refusals:
            logins(principal, error)
        await asyncio.gather(*logins._tasks)

    same_minute()
    asyncio.run(refuse())
    return database.audit_log.page(AuditFilter(event_types=["login.failed"]), None, None, 1000)[0]


def test_a_valid_keys_refusal_is_logged_after_a_minutes_worth_of_keyless_ones(database):
    keyless = [(None, errors.missing_key())] * (REFUSALS_PER_MINUTE + 20)
    entries = logged(database, *keyless, (PROBER, errors.not_admin()))
    assert [entry.actor_id for entry in entries].count("key_prober") == 1
    assert len(entries) == REFUSALS_PER_MINUTE + 1  # the keyless ones past their budget: not logged


def test_a_wrong_keys_refusal_is_logged_after_a_minutes_worth_of_keyless_ones(database):
    entries = logged(database, *[(None, errors.missing_key())] * (REFUSALS_PER_MINUTE + 5), (None, errors.invalid_key()))
    assert [entry.details["login.failed"]["error_message"] for entry in entries].count(errors.invalid_key().message) == 1


def test_one_valid_keys_flood_leaves_another_valid_keys_refusal_logged(database):
    flood = [(Principal("proj_other", key_id="key_flood"), errors.not_admin())] * (REFUSALS_PER_MINUTE + 5)
    entries = logged(database, *flood, (PROBER, errors.not_admin()))
    ids = [entry.actor_id for entry in entries]
    assert ids.count("key_flood") == REFUSALS_PER_MINUTE and ids.count("key_prober") == 1
