"""The audit log as the service keys it, and entries to append (tests/storage/test_audit_chain.py).

A module of its own, importing neither pytest nor the test modules, because the replicas of
the concurrent-append test import it in processes of their own: importing the test module
there cost each replica ~1.3 CPU-s more (1.95 against 0.63, measured on 2 shared cores)."""

from __future__ import annotations

from llm_backend.storage import Database
from llm_backend.storage.audit_log import new_entry

SECRET = "audit-key-for-tests-0123456789"


def keyed(url: str) -> Database:
    """The database as the service opens it with ``audit_log_key: SECRET``."""
    from llm_backend.auth import audit_key
    from llm_backend.settings import Settings

    return Database(url, audit_key=audit_key.of(Settings(audit_log_key=SECRET)))


def entries(count: int, label: str = "test") -> list[dict]:
    return [new_entry("project.updated", {"project.updated": {"id": f"proj_{label}_{n}", "changes_requested": {"title": str(n)}}},
                      actor=None, actor_id=None, resource_id=f"proj_{label}_{n}") for n in range(count)]
