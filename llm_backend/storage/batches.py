"""Batches and their lines (migration 0012).

A batch row holds what it was created with, its status with its timestamps, and the lease
of the process running it. Its lines are rows too, one per request of its input file; a
line's output line is written once (an UPDATE of a line not yet done), so a line answered
twice - by a process that lost its lease and the one that took the batch over - still
appears once. ``request_counts`` and ``usage`` are computed from the lines when a batch
is read, so they cannot drift.
"""

from __future__ import annotations

import builtins
import secrets
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, func, insert, or_, select, update
from sqlalchemy.orm import Session

from ..json.types import Json
from .clock import database_epoch, database_now
from .dml import rows_changed
from .models import BatchLine, StoredBatch

if TYPE_CHECKING:
    from .handle import DatabaseHandle


# A batch whose lines are ``POST /v1/messages`` requests is an Anthropic Message Batch
# (families/messages/store.py): never shown by OpenAI's operations, nor theirs by its.
MESSAGE_BATCHES = "/v1/messages"
# Statuses a batch has while some process must still work on it.
RUNNING = ("validating", "in_progress", "finalizing", "cancelling")
# The timestamps of the batch object, by status.
TIMESTAMPS = ("created_at", "in_progress_at", "expires_at", "finalizing_at", "completed_at", "failed_at",
              "expired_at", "cancelling_at", "cancelled_at")
INSERT_CHUNK = 1000


class CannotCancel(ValueError):
    """The batch has ended (``status``): it cannot be cancelled any more."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


@dataclass(frozen=True)
class Claimed:
    """A batch a process holds the lease of: what running it needs."""

    seq: int
    id: str
    owner: str
    endpoint: str
    input_file_id: str
    status: str
    expires_at: int
    output_expires_after: Json | None
    creator: str | None = None  # the key that created it (``Principal.key``; None: before 0020)


def _totals(session: Session, seqs: list[int]) -> dict[int, tuple]:
    """(total, completed, failed, input, cached, output, reasoning tokens) per batch."""
    if not seqs:
        return {}
    rows = session.execute(
        select(
            BatchLine.batch_seq,
            func.count(),
            func.sum(case((BatchLine.done & ~BatchLine.failed, 1), else_=0)),
            func.sum(case((BatchLine.done & BatchLine.failed, 1), else_=0)),
            func.sum(BatchLine.input_tokens),
            func.sum(BatchLine.cached_tokens),
            func.sum(BatchLine.output_tokens),
            func.sum(BatchLine.reasoning_tokens),
        )
        .where(BatchLine.batch_seq.in_(seqs))
        .group_by(BatchLine.batch_seq)
    ).all()
    return {row[0]: tuple(int(value or 0) for value in row[1:]) for row in rows}


def as_openai(row: StoredBatch, totals: tuple | None) -> Json:
    """The batch object; fields with no value yet are left out (the document types them
    as strings and integers, never null: the SDKs read a missing one as None)."""
    total, completed, failed, input_tokens, cached, output_tokens, reasoning = totals or (0,) * 7
    shown: Json = {
        "id": row.id,
        "object": "batch",
        "endpoint": row.endpoint,
        "input_file_id": row.input_file_id,
        "completion_window": row.completion_window,
        "status": row.status,
        "request_counts": {"total": total, "completed": completed, "failed": failed},
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": input_tokens + output_tokens,
        },
        "metadata": row.metadata_,
    }
    for name in ("model", "output_file_id", "error_file_id"):
        if getattr(row, name) is not None:
            shown[name] = getattr(row, name)
    if row.errors:
        shown["errors"] = {"object": "list", "data": row.errors}
    for name in TIMESTAMPS:
        if getattr(row, name) is not None:
            shown[name] = getattr(row, name)
    return shown


_OPENAI_KIND = StoredBatch.endpoint != MESSAGE_BATCHES  # OpenAI's batches, not Message Batches


class BatchStore:
    def __init__(self, database: DatabaseHandle) -> None:
        self._database = database

    # --- the API's operations (blocking: run them with ``Database.run``) -------------------

    def create(
        self,
        owner: str,
        endpoint: str,
        input_file_id: str,
        completion_window: str,
        window_seconds: int,
        metadata: dict[str, str] | None,
        output_expires_after: Json | None,
        creator: str | None = None,
    ) -> Json:
        now = int(time.time())
        row = StoredBatch(
            id="batch_" + secrets.token_hex(16),
            owner=owner,
            creator=creator,
            endpoint=endpoint,
            input_file_id=input_file_id,
            completion_window=completion_window,
            status="validating",
            metadata_=metadata,
            output_expires_after=output_expires_after,
            created_at=now,
            expires_at=now + window_seconds,
        )
        with self._database.sessions.begin() as session:
            session.add(row)
        return as_openai(row, None)

    def _find(self, session: Session, owner: str, batch_id: str) -> StoredBatch | None:
        return session.scalars(
            select(StoredBatch).where(StoredBatch.owner == owner, StoredBatch.id == batch_id, _OPENAI_KIND)
        ).one_or_none()

    def get(self, owner: str, batch_id: str) -> Json | None:
        with self._database.sessions() as session:
            row = self._find(session, owner, batch_id)
            return as_openai(row, _totals(session, [row.seq]).get(row.seq)) if row else None

    def list(self, owner: str, after: str | None, limit: int) -> tuple[list[Json], bool]:
        """Newest first; raises ``LookupError`` when ``after`` is not one of the owner's."""
        query = select(StoredBatch).where(StoredBatch.owner == owner, _OPENAI_KIND)
        with self._database.sessions() as session:
            if after is not None:
                cursor = self._find(session, owner, after)
                if cursor is None:
                    raise LookupError(after)
                query = query.where(StoredBatch.seq < cursor.seq)
            rows = list(session.scalars(query.order_by(StoredBatch.seq.desc()).limit(limit + 1)))
            totals = _totals(session, [row.seq for row in rows[:limit]])
            return [as_openai(row, totals.get(row.seq)) for row in rows[:limit]], len(rows) > limit

    def cancel(self, owner: str, batch_id: str) -> Json | None:
        """Ask for a running batch to stop: ``cancelling`` (the process running it stops its
        lines and writes what was done); an ended batch raises ``CannotCancel``."""
        with self._database.sessions.begin() as session:
            row = self._find(session, owner, batch_id)
            if row is None:
                return None
            if row.status in ("validating", "in_progress"):
                row.status = "cancelling"
                row.cancelling_at = int(time.time())
            elif row.status not in ("cancelling", "cancelled"):
                raise CannotCancel(row.status)
            return as_openai(row, _totals(session, [row.seq]).get(row.seq))

    # --- the runner's (serving/batches/runner.py) ------------------------------------------

    def claim(self, holder: str, lease: float, served: Iterable[str] = (), full: Iterable[str] = ()) -> Claimed | None:
        """Take the lease (``lease`` seconds) of the oldest batch that needs work and that
        no live process holds (none ever did, or its lease ran out); None if there is none.
        Owners the caller already ``served`` go after the others, and a ``full`` owner's
        batches are not taken (tenants share the runner: ``serving/batches/runner.py``).
        Lease times are the database's clock (``storage/clock.py``), never a replica's."""
        served, full = list(served), list(full)
        with self._database.sessions.begin() as session:
            free = or_(StoredBatch.lease_until.is_(None), StoredBatch.lease_until < database_now())
            wanted = select(StoredBatch).where(StoredBatch.status.in_(RUNNING), free)
            if full:
                wanted = wanted.where(StoredBatch.owner.not_in(full))
            order = [case((StoredBatch.owner.in_(served), 1), else_=0)] if served else []
            candidates = session.scalars(wanted.order_by(*order, StoredBatch.seq).limit(8)).all()
            for row in candidates:
                # Compare-and-set: of two processes claiming it at once, one wins.
                won = rows_changed(
                    session,
                    update(StoredBatch)
                    .where(StoredBatch.seq == row.seq, StoredBatch.status.in_(RUNNING), free)
                    .values(lease_holder=holder, lease_until=database_now(lease))
                    .execution_options(synchronize_session=False)
                )
                if won:
                    return Claimed(row.seq, row.id, row.owner, row.endpoint, row.input_file_id, row.status,
                                   row.expires_at, row.output_expires_after, row.creator)
        return None

    def renew(self, holder: str, seqs: builtins.list[int], lease: float) -> dict[int, tuple[str, int, bool]]:
        """Extend this holder's leases to ``lease`` seconds from now (the database's now);
        (status, expires_at, whether the database's clock is past it) of each batch it
        still holds (one it lost, or that ended, is missing)."""
        if not seqs:
            return {}
        with self._database.sessions.begin() as session:
            session.execute(
                update(StoredBatch)
                .where(StoredBatch.seq.in_(seqs), StoredBatch.lease_holder == holder, StoredBatch.status.in_(RUNNING))
                .values(lease_until=database_now(lease))
                .execution_options(synchronize_session=False)
            )
            rows = session.execute(
                select(StoredBatch.seq, StoredBatch.status, StoredBatch.expires_at,
                       StoredBatch.expires_at <= database_epoch()).where(
                    StoredBatch.seq.in_(seqs), StoredBatch.lease_holder == holder, StoredBatch.status.in_(RUNNING)
                )
            ).all()
            return {seq: (status, expires_at, bool(expired)) for seq, status, expires_at, expired in rows}

    def release(self, holder: str, seqs: builtins.list[int]) -> None:
        """Give up leases at once (a clean stop): another process may take them now."""
        if seqs:
            with self._database.sessions.begin() as session:
                session.execute(
                    update(StoredBatch)
                    .where(StoredBatch.seq.in_(seqs), StoredBatch.lease_holder == holder)
                    .values(lease_holder=None, lease_until=None)
                    .execution_options(synchronize_session=False)
                )

    def accept(self, seq: int, model: str | None, lines: Iterable[tuple[str, Json]]) -> bool:
        """A validated batch: its lines (custom_id, body) stored and its status
        ``in_progress``, in one transaction; False if it is no longer ``validating``
        (cancelled meanwhile) and nothing was stored."""
        now = int(time.time())
        with self._database.sessions.begin() as session:
            started = rows_changed(
                session,
                update(StoredBatch)
                .where(StoredBatch.seq == seq, StoredBatch.status == "validating")
                .values(status="in_progress", in_progress_at=now, model=model)
                .execution_options(synchronize_session=False)
            )
            if not started:
                return False
            chunk: list[Json] = []
            for index, (custom_id, body) in enumerate(lines):
                chunk.append({"batch_seq": seq, "line": index, "custom_id": custom_id, "body": body})
                if len(chunk) >= INSERT_CHUNK:
                    session.execute(insert(BatchLine), chunk)
                    chunk = []
            if chunk:
                session.execute(insert(BatchLine), chunk)
        return True

    def set_status(self, seq: int, status: str, expected: tuple[str, ...], **values: Any) -> bool:
        """Move a batch to ``status`` if it is in one of ``expected``; the status's timestamp
        is set the first time only."""
        column = f"{status}_at"
        stamp = {column: func.coalesce(getattr(StoredBatch, column), int(time.time()))} if column in TIMESTAMPS else {}
        with self._database.sessions.begin() as session:
            return bool(
                rows_changed(
                    session,
                    update(StoredBatch)
                    .where(StoredBatch.seq == seq, StoredBatch.status.in_(expected))
                    .values(status=status, **stamp, **values)
                    .execution_options(synchronize_session=False)
                )
            )

    def pending(self, seq: int, after: int, limit: int) -> builtins.list[tuple[int, str, Json]]:
        """Lines not answered yet, after position ``after``, in order: (line, custom_id, body)."""
        with self._database.sessions() as session:
            rows = session.execute(
                select(BatchLine.line, BatchLine.custom_id, BatchLine.body)
                .where(BatchLine.batch_seq == seq, BatchLine.line > after, BatchLine.done.is_(False))
                .order_by(BatchLine.line)
                .limit(limit)
            ).all()
            return [(line, custom_id, body) for line, custom_id, body in rows]

    def answer(self, seq: int, line: int, output: Json, failed: bool, usage: dict[str, int]) -> bool:
        """Keep a line's output line, once: False if the line was answered already."""
        with self._database.sessions.begin() as session:
            return bool(
                rows_changed(
                    session,
                    update(BatchLine)
                    .where(BatchLine.batch_seq == seq, BatchLine.line == line, BatchLine.done.is_(False))
                    .values(done=True, failed=failed, output=output, **usage)
                    .execution_options(synchronize_session=False)
                )
            )

    def unanswered(self, seq: int) -> builtins.list[tuple[int, str]]:
        """(line, custom_id) of every line not answered."""
        with self._database.sessions() as session:
            rows = session.execute(
                select(BatchLine.line, BatchLine.custom_id)
                .where(BatchLine.batch_seq == seq, BatchLine.done.is_(False))
                .order_by(BatchLine.line)
            ).all()
            return [(line, custom_id) for line, custom_id in rows]

    def outputs(self, seq: int, failed: bool) -> Iterator[Json]:
        """The output lines (``failed``: those of the error file), in input order, read in
        pages (a batch of 50 000 lines is never whole in memory)."""
        after = -1
        while True:
            with self._database.sessions() as session:
                rows = session.execute(
                    select(BatchLine.line, BatchLine.output)
                    .where(BatchLine.batch_seq == seq, BatchLine.done.is_(True), BatchLine.failed.is_(failed),
                           BatchLine.line > after)
                    .order_by(BatchLine.line)
                    .limit(INSERT_CHUNK)
                ).all()
            if not rows:
                return
            for line, output in rows:
                yield output
            after = rows[-1][0]

    def has_outputs(self, seq: int, failed: bool) -> bool:
        with self._database.sessions() as session:
            query = select(BatchLine.line).where(
                BatchLine.batch_seq == seq, BatchLine.done.is_(True), BatchLine.failed.is_(failed)
            )
            return session.scalar(query.limit(1)) is not None

    def row(self, batch_id: str) -> Json | None:
        """Any owner's batch by id, with its lease: for operators and tests."""
        with self._database.sessions() as session:
            row = session.scalars(select(StoredBatch).where(StoredBatch.id == batch_id)).one_or_none()
            return None if row is None else {**as_openai(row, _totals(session, [row.seq]).get(row.seq)),
                                             "lease_holder": row.lease_holder}
