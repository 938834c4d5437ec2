"""The audit log's chain: each entry sealed to the one before it by a keyed hash, so that a
change by anyone without the key shows.

Triggers refuse UPDATE and DELETE, but whoever owns the table can drop or disable them (and
on SQLite anyone who can write the file). So each entry also carries its place in the chain
(``chain_index``: 0, 1, 2, ...) and ``chain``: HMAC-SHA256, under the audit log's key
(``audit_log_key``, else a key kept in the data directory: ``auth/audit_key.py``), of its place,
the previous entry's ``chain`` and its own fields in one canonical JSON form. An entry
altered, removed or inserted without the key breaks the chain there, and ``llm-backend audit
verify`` (``verify`` here) names the first entry where it breaks. What the chain cannot show
is the newest entries removed together (nothing follows them): ``audit verify`` prints the
head, to be kept elsewhere and compared (docs/ADMIN.md).

Appends take the chain's head under a lock held to their transaction's end (PostgreSQL: a
transaction advisory lock, which every replica's appends share; SQLite: the database's write
lock, taken before the head is read), so two appends, in any process, never seal to the same
head (a unique index on ``chain_index`` refuses it anyway).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from .models import AuditLogEntry

# The chain's start: what the first entry is sealed to.
GENESIS = ""
# The key of a ``Database`` built without one (tools and tests that verify nothing): anyone
# can recompute such a chain. The service and the command line always pass the configured key.
UNKEYED = b"llm-backend audit log: no key given"
# PostgreSQL advisory lock key ("llmbaudt"): held by each append to its transaction's end.
HEAD_LOCK = 0x6C6C_6D62_6175_6474
# The fields an entry is sealed over, in this order (everything the API shows of it).
FIELDS = ("id", "type", "effective_at", "project_id", "project_name", "actor_id", "actor", "resource_id", "details")
PAGE = 1000


def canonical(position: int, previous: str, entry: Any) -> bytes:
    """One text for an entry, whichever database gave it back: its fields as JSON with
    sorted keys, no spaces and ASCII only (JSON columns come back as equal values, not the
    same text)."""
    get = entry.get if isinstance(entry, dict) else lambda name: getattr(entry, name)
    values = [position, previous, *(get(name) for name in FIELDS)]
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def seal(key: bytes, position: int, previous: str, entry: Any) -> str:
    return hmac.new(key, canonical(position, previous, entry), hashlib.sha256).hexdigest()


def hold_head(session: Session) -> None:
    """The chain's head held by this transaction until it ends."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": HEAD_LOCK})
    elif dialect == "sqlite":
        # A write that matches no row: the driver begins the transaction and SQLite gives it
        # the write lock (waiting for another writer), so the head read next stays the head.
        session.execute(text("UPDATE audit_log SET seq = seq WHERE 0"))


def head(session: Session) -> tuple[int, str]:
    """(the next entry's place, the ``chain`` it is sealed to)."""
    last = session.execute(select(AuditLogEntry.chain_index, AuditLogEntry.chain).order_by(AuditLogEntry.seq.desc()).limit(1)).first()
    if last is None or last.chain_index is None:
        return 0, GENESIS
    return last.chain_index + 1, last.chain


def chained(session: Session, key: bytes, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``entries`` with their places and seals, the head held to the transaction's end."""
    hold_head(session)
    position, previous = head(session)
    sealed = []
    for entry in entries:
        previous = seal(key, position, previous, entry)
        sealed.append({**entry, "chain_index": position, "chain": previous})
        position += 1
    return sealed


@dataclass
class Break:
    """Where the chain breaks: the first entry that does not follow the one before it."""

    seq: int
    id: str
    reason: str


@dataclass
class Verdict:
    count: int  # entries read
    head: str  # the last entry's chain (GENESIS: none)
    broken: Break | None


def verify(session: Session, key: bytes) -> Verdict:
    """The chain walked in the log's order (``seq``), each entry checked against the one
    before it; stops at the first that does not follow."""
    position, previous, count = 0, GENESIS, 0
    for row in _rows(session):
        count += 1
        if row.chain is None or row.chain_index is None:
            return Verdict(count, previous, Break(row.seq, row.id, "not sealed into the chain (written or altered around the service)"))
        reason = None
        if row.chain_index > position:
            reason = f"{row.chain_index - position} entries removed before it"
        elif row.chain_index < position:
            reason = f"out of place (at {row.chain_index}, {position} expected): inserted or moved"
        elif not hmac.compare_digest(seal(key, position, previous, row), row.chain):
            reason = "altered, or written without the audit log's key"
        if reason is not None:
            return Verdict(count, previous, Break(row.seq, row.id, reason))
        position, previous = position + 1, row.chain
    return Verdict(count, previous, None)


def _rows(session: Session) -> Iterator[AuditLogEntry]:
    """Every entry by ``seq``, a page at a time (a log of millions in bounded memory)."""
    after = None
    while True:
        query = select(AuditLogEntry).order_by(AuditLogEntry.seq).limit(PAGE)
        if after is not None:
            query = query.where(AuditLogEntry.seq > after)
        page = list(session.scalars(query))
        yield from page
        if len(page) < PAGE:
            return
        after = page[-1].seq
        session.expunge_all()
