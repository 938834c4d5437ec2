"""Anthropic's Message Batches, kept in the batch tables (``storage/batches.py``: no migration of its own).

A Message Batch is a batch whose lines are ``POST /v1/messages`` requests: its row's
``endpoint`` says so (``MESSAGE_BATCHES``: no OpenAI batch can name it, createBatch's enum
has no such endpoint), and that is all that tells the two kinds apart; each kind's
operations see only their own. Its requests are stored as the batch's lines when it is
created (``in_progress`` at once: Anthropic checks each request's ``params`` as it runs, so
there is no input file to validate), and the one batch runner runs them as it runs any
batch's: leases, resumption, cancel and expiry alike (serving/batches/runner.py).

Anthropic's object is computed from the row and its lines as OpenAI's is: its counts by
what each line's stored output says - answered (succeeded or errored), or never run
(``batch_cancelled``/``batch_expired``: canceled, expired); its times as RFC 3339 strings.
"""

from __future__ import annotations

import builtins
import secrets
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from sqlalchemy import case, delete, func, insert, select
from sqlalchemy.orm import Session

from llm_backend.json.types import Json
from llm_backend.storage.batches import INSERT_CHUNK, MESSAGE_BATCHES, CannotCancel
from llm_backend.storage.models import BatchLine, StoredBatch

if TYPE_CHECKING:
    from llm_backend.storage.handle import DatabaseHandle

ENDED = ("completed", "cancelled", "expired", "failed")
SHOWN_STATUS = {"cancelling": "canceling"}  # every status not ended and not this one: in_progress


class StillProcessing(ValueError):
    """The batch has not ended (``processing_status``): it cannot be deleted, nor its
    results read, yet."""

    def __init__(self, processing_status: str) -> None:
        super().__init__(processing_status)
        self.processing_status = processing_status


def _instant(epoch: int | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, timezone.utc).isoformat().replace("+00:00", "Z")


def processing_status(status: str) -> str:
    return "ended" if status in ENDED else SHOWN_STATUS.get(status, "in_progress")


def _counts(session: Session, seqs: list[int]) -> dict[int, Json]:
    """Anthropic's ``request_counts`` per batch, from its lines."""
    if not seqs:
        return {}
    code = BatchLine.output[("error", "code")].as_string()  # a line that never ran says why
    not_run = BatchLine.done & BatchLine.failed
    rows = session.execute(
        select(
            BatchLine.batch_seq,
            func.sum(case((BatchLine.done.is_(False), 1), else_=0)),
            func.sum(case((BatchLine.done & ~BatchLine.failed, 1), else_=0)),
            func.sum(case((not_run, 1), else_=0)),
            func.sum(case((not_run & (code == "batch_cancelled"), 1), else_=0)),
            func.sum(case((not_run & (code == "batch_expired"), 1), else_=0)),
        )
        .where(BatchLine.batch_seq.in_(seqs))
        .group_by(BatchLine.batch_seq)
    ).all()
    counts = {}
    for seq, processing, succeeded, failed, canceled, expired in rows:
        processing, succeeded, failed, canceled, expired = (int(n or 0) for n in (processing, succeeded, failed, canceled, expired))
        counts[seq] = {"processing": processing, "succeeded": succeeded, "errored": failed - canceled - expired,
                       "canceled": canceled, "expired": expired}
    return counts


def as_anthropic(row: StoredBatch, counts: Json | None) -> Json:
    """The Message Batch object; ``results_url`` is the serving layer's (it knows the host).
    Its requests are all ``processing`` until it has ended, as Anthropic's: "Requests start
    as processing and move to one of the other statuses only once processing of the entire
    batch ends" (its API reference, MessageBatch.request_counts)."""
    ended = row.completed_at or row.cancelled_at or row.expired_at or row.failed_at
    counts = counts or {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    if row.status not in ENDED:
        counts = {name: sum(counts.values()) if name == "processing" else 0 for name in counts}
    return {
        "id": row.id,
        "type": "message_batch",
        "processing_status": processing_status(row.status),
        "request_counts": counts,
        "ended_at": _instant(ended if row.status in ENDED else None),
        "created_at": _instant(row.created_at),
        "expires_at": _instant(row.expires_at),
        "cancel_initiated_at": _instant(row.cancelling_at),
        "archived_at": None,
        "results_url": None,
    }


class MessageBatchStore:
    def __init__(self, database: DatabaseHandle) -> None:
        self._database = database

    def create(self, owner: str, creator: str | None, requests: list[tuple[str, Json, Json | None]], window_seconds: int) -> Json:
        """A Message Batch of ``requests`` (custom_id, params, the output of a request refused
        before it runs, else None), its lines stored with it, in one transaction."""
        now = int(time.time())
        row = StoredBatch(
            id="msgbatch_" + secrets.token_hex(12),
            owner=owner,
            creator=creator,
            endpoint=MESSAGE_BATCHES,
            input_file_id="",  # its requests came in the request, not in a file
            completion_window="24h",
            status="in_progress",
            created_at=now,
            in_progress_at=now,
            expires_at=now + window_seconds,
        )
        with self._database.sessions.begin() as session:
            session.add(row)
            session.flush()
            for start in range(0, len(requests), INSERT_CHUNK):
                session.execute(insert(BatchLine), [
                    {"batch_seq": row.seq, "line": start + index, "custom_id": custom_id, "body": params,
                     "done": refused is not None, "failed": refused is not None, "output": refused}
                    for index, (custom_id, params, refused) in enumerate(requests[start:start + INSERT_CHUNK])
                ])
            counts = _counts(session, [row.seq]).get(row.seq)
            return as_anthropic(row, counts)

    def _find(self, session: Session, owner: str, batch_id: str) -> StoredBatch | None:
        return session.scalars(select(StoredBatch).where(
            StoredBatch.owner == owner, StoredBatch.id == batch_id, StoredBatch.endpoint == MESSAGE_BATCHES
        )).one_or_none()

    def get(self, owner: str, batch_id: str) -> Json | None:
        with self._database.sessions() as session:
            row = self._find(session, owner, batch_id)
            return as_anthropic(row, _counts(session, [row.seq]).get(row.seq)) if row else None

    def list(self, owner: str, before_id: str | None, after_id: str | None, limit: int) -> tuple[list[Json], bool]:
        """Newest first: the ``limit`` batches just older than ``after_id``, or just newer than
        ``before_id``, or the newest; raises ``LookupError`` naming a cursor not the owner's."""
        query = select(StoredBatch).where(StoredBatch.owner == owner, StoredBatch.endpoint == MESSAGE_BATCHES)
        with self._database.sessions() as session:
            seqs: dict[str, int] = {}  # each cursor's row
            for name, cursor_id in (("before_id", before_id), ("after_id", after_id)):
                if cursor_id is not None:
                    cursor = self._find(session, owner, cursor_id)
                    if cursor is None:
                        raise LookupError(name)
                    seqs[name] = cursor.seq
            if "before_id" in seqs:
                query = query.where(StoredBatch.seq > seqs["before_id"]).order_by(StoredBatch.seq)
            else:
                if "after_id" in seqs:
                    query = query.where(StoredBatch.seq < seqs["after_id"])
                query = query.order_by(StoredBatch.seq.desc())
            rows = list(session.scalars(query.limit(limit + 1)))
            has_more, rows = len(rows) > limit, rows[:limit]
            if before_id is not None:
                rows.reverse()
            counts = _counts(session, [row.seq for row in rows])
            return [as_anthropic(row, counts.get(row.seq)) for row in rows], has_more

    def cancel(self, owner: str, batch_id: str) -> Json | None:
        """``canceling`` (the runner stops its lines: the ones not run are ``canceled``);
        an ended batch raises ``CannotCancel``."""
        with self._database.sessions.begin() as session:
            row = self._find(session, owner, batch_id)
            if row is None:
                return None
            if row.status in ENDED:
                raise CannotCancel(row.status)
            if row.status != "cancelling":
                row.status, row.cancelling_at = "cancelling", int(time.time())
            return as_anthropic(row, _counts(session, [row.seq]).get(row.seq))

    def delete(self, owner: str, batch_id: str) -> bool:
        """The batch and its lines gone (False: no such batch); ``StillProcessing`` unless ended."""
        with self._database.sessions.begin() as session:
            row = self._find(session, owner, batch_id)
            if row is None:
                return False
            if row.status not in ENDED:
                raise StillProcessing(processing_status(row.status))
            session.execute(delete(BatchLine).where(BatchLine.batch_seq == row.seq))
            session.delete(row)
            return True

    def ended(self, owner: str, batch_id: str) -> int | None:
        """The batch's ``seq`` when it has ended (None: no such batch); ``StillProcessing`` else."""
        with self._database.sessions() as session:
            row = self._find(session, owner, batch_id)
            if row is None:
                return None
            if row.status not in ENDED:
                raise StillProcessing(processing_status(row.status))
            return row.seq

    def outputs(self, seq: int, after: int, limit: int) -> builtins.list[tuple[int, str, Json | None]]:
        """(line, custom_id, output) of the lines after ``after``, in order: a page of results."""
        with self._database.sessions() as session:
            rows = session.execute(
                select(BatchLine.line, BatchLine.custom_id, BatchLine.output)
                .where(BatchLine.batch_seq == seq, BatchLine.line > after)
                .order_by(BatchLine.line)
                .limit(limit)
            ).all()
            return [(line, custom_id, output) for line, custom_id, output in rows]
