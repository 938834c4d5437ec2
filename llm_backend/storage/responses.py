"""Stored Responses: every query is scoped to the owner that stored them.

A response row keeps the object as last shown to the client, the request, and the input
items of its turn (with ids). History is never copied forward: ``history`` walks the
``previous_response_id`` links back, so a chain of n turns stores n rows, not n² items.

A background response is written by the process running it (its events as they come,
``add_events``; its final object with its last events, ``finish``), cancelled by any
process, failed by any process once its lease ran out: several replicas share the rows, so
an ended response is never written again (``finish`` and the sweep change only a row still
``queued`` or ``in_progress``, by a conditional UPDATE).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any


from sqlalchemy import delete, func, select, update

from ..json.types import Json
from .conversations import append_items
from .clock import database_now
from .dml import conflict_insert, rows_changed
from .models import ResponseEvent, StoredResponse

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from .handle import DatabaseHandle


UNFINISHED = ("queued", "in_progress")


class ResponseNotFound(LookupError):
    """A response named (directly or as a link of a chain) is unknown to this owner."""

    def __init__(self, response_id: str) -> None:
        super().__init__(response_id)
        self.response_id = response_id


@dataclass
class NewResponse:
    """What the Responses service hands over to be stored."""

    id: str
    owner: str
    model: str
    created_at: int
    response: Json
    request: Json
    input_items: list[Json]
    previous_response_id: str | None = None
    conversation_id: str | None = None
    background: bool = False


class ResponseStore:
    def __init__(self, database: DatabaseHandle) -> None:
        self._database = database

    def _find(self, session: Session, owner: str, response_id: str) -> StoredResponse | None:
        return session.scalars(
            select(StoredResponse).where(StoredResponse.owner == owner, StoredResponse.id == response_id)
        ).one_or_none()

    def save(self, record: NewResponse, conversation_items: list[Json] | None = None) -> None:
        """Store a response; with a conversation, append ``conversation_items`` to it in the
        same transaction. Committed when this returns."""
        row = StoredResponse(
            id=record.id,
            owner=record.owner,
            model=record.model,
            status=record.response["status"],
            created_at=record.created_at,
            response=record.response,
            request=record.request,
            input_items=record.input_items,
            previous_response_id=record.previous_response_id,
            conversation_id=record.conversation_id,
            background=record.background,
        )
        with self._database.sessions.begin() as session:
            session.add(row)
            if record.conversation_id and conversation_items:
                append_items(session, record.owner, record.conversation_id, conversation_items)

    def finish(
        self,
        owner: str,
        response_id: str,
        response: Json,
        conversation_items: list[Json] | None = None,
        events: list[Json] | None = None,
    ) -> bool:
        """Replace a stored background response, still queued or in progress, with a newer
        object (its final one, with its last ``events``, in one transaction); False if it
        is gone or has ended meanwhile (a cancel, here or on another replica)."""
        with self._database.sessions.begin() as session:
            if not _replaced_while_unfinished(session, response_id, response, StoredResponse.owner == owner):
                return False
            _add_events(session, response_id, events or [])
            if conversation_items:
                conversation_id = session.scalar(
                    select(StoredResponse.conversation_id).where(StoredResponse.owner == owner, StoredResponse.id == response_id)
                )
                if conversation_id:
                    append_items(session, owner, conversation_id, conversation_items)
            return True

    def add_events(self, response_id: str, events: list[Json]) -> None:
        """Write stream events of a running background response (its process only)."""
        with self._database.sessions.begin() as session:
            _add_events(session, response_id, events)

    def events(self, owner: str, response_id: str, after: int | None = None) -> tuple[str, list[Json]] | None:
        """The response's status and the events written so far with a ``sequence_number``
        above ``after`` (None: no such response of this owner)."""
        with self._database.sessions() as session:
            # The status first: the events written before it ended are all there to be read then.
            status = session.scalar(
                select(StoredResponse.status).where(StoredResponse.owner == owner, StoredResponse.id == response_id)
            )
            if status is None:
                return None
            query = select(ResponseEvent.event).where(ResponseEvent.response_id == response_id)
            if after is not None:
                query = query.where(ResponseEvent.sequence_number > after)
            return status, list(session.scalars(query.order_by(ResponseEvent.sequence_number)))

    def get(self, owner: str, response_id: str) -> Json | None:
        with self._database.sessions() as session:
            row = self._find(session, owner, response_id)
            return row.response if row else None

    def input_items(self, owner: str, response_id: str) -> list[Json] | None:
        with self._database.sessions() as session:
            row = self._find(session, owner, response_id)
            return list(row.input_items) if row else None

    def history(self, owner: str, response_id: str) -> list[Json]:
        """Every input and output item of the chain ending at ``response_id``, oldest first;
        raises ``ResponseNotFound`` naming the first link this owner does not have."""
        turns: list[list[Json]] = []
        seen: set[str] = set()
        with self._database.sessions() as session:
            next_id: str | None = response_id
            while next_id is not None and next_id not in seen:
                seen.add(next_id)
                row = self._find(session, owner, next_id)
                if row is None:
                    raise ResponseNotFound(next_id)
                turns.append([*row.input_items, *(row.response.get("output") or [])])
                next_id = row.previous_response_id
        return [item for turn in reversed(turns) for item in turn]

    def delete(self, owner: str, response_id: str) -> bool:
        with self._database.sessions.begin() as session:
            deleted = rows_changed(
                session,
                delete(StoredResponse).where(StoredResponse.owner == owner, StoredResponse.id == response_id)
            )
            return deleted > 0

    def fail_unfinished(self, message: str, lease: float | None = None, ids: list[str] | None = None) -> int:
        """Mark queued or in-progress responses failed: those not touched for ``lease``
        seconds by the database's clock (their process is gone: nothing runs them any
        more), or those of ``ids``; their streams end with a ``response.failed`` event.
        Returns how many."""
        query = select(StoredResponse).where(StoredResponse.status.in_(UNFINISHED))
        if lease is not None:
            query = query.where(StoredResponse.updated_at < database_now(-lease))
        if ids is not None:
            query = query.where(StoredResponse.id.in_(ids))
        failed = 0
        with self._database.sessions.begin() as session:
            for row in list(session.scalars(query.with_for_update())):
                response = {**row.response, "status": "failed", "error": {"code": "server_error", "message": message}}
                if not _replaced_while_unfinished(session, row.id, response):  # a cancel or an end since the read stands
                    continue
                last = session.scalar(
                    select(func.max(ResponseEvent.sequence_number)).where(ResponseEvent.response_id == row.id)
                )
                sequence = 0 if last is None else last + 1
                _add_events(session, row.id, [{"type": "response.failed", "sequence_number": sequence, "response": response}])
                failed += 1
        return failed

    def touch(self, ids: list[str]) -> None:
        """Renew the lease of running background responses (their ``updated_at``)."""
        with self._database.sessions.begin() as session:
            session.execute(
                update(StoredResponse)
                .where(StoredResponse.id.in_(ids), StoredResponse.status.in_(UNFINISHED))
                .values(updated_at=database_now())
            )

    def ended(self, ids: list[str]) -> list[str]:
        """Those of ``ids`` that are no longer running: ended (cancelled, by any process) or deleted."""
        with self._database.sessions() as session:
            running = set(
                session.scalars(
                    select(StoredResponse.id).where(StoredResponse.id.in_(ids), StoredResponse.status.in_(UNFINISHED))
                )
            )
        return [response_id for response_id in ids if response_id not in running]

    def count(self) -> int:
        """Responses of every owner: for operators and tests."""
        with self._database.sessions() as session:
            return session.scalar(select(func.count()).select_from(StoredResponse)) or 0

    def status(self, response_id: str) -> str | None:
        """The stored status of any owner's response: for operators and tests."""
        with self._database.sessions() as session:
            return session.scalar(select(StoredResponse.status).where(StoredResponse.id == response_id))


def _replaced_while_unfinished(session: Session, response_id: str, response: Json, *where: Any) -> bool:
    """``response`` (and its status) over the row of ``response_id`` (and ``where``), if that
    row is still queued or in progress: whether it was.

    One conditional UPDATE decides it, not a row read then written: pysqlite runs a SELECT
    outside the transaction it opens at the first write, so a row read unfinished could be
    cancelled by another thread before this wrote over it (a full run here stored a cancelled
    response back ``in_progress``). The UPDATE holds SQLite's write lock, or PostgreSQL's row
    lock, until the commit."""
    return rows_changed(
        session,
        update(StoredResponse)
        .where(StoredResponse.id == response_id, StoredResponse.status.in_(UNFINISHED), *where)
        .values(response=response, status=response["status"]),
    ) > 0


def _add_events(session: Session, response_id: str, events: list[Json]) -> None:
    """``events`` written; one written already (the same number of the same response) is
    left as it is. A background response's writer may write an event twice: cancelled
    while its last write committed in its thread (the task is told only once the thread is
    done), it had not counted those events written, and wrote them again as it ended (a
    full run here: the UNIQUE constraint refused that last write, and the response's last
    events were lost)."""
    if events:
        statement = conflict_insert(session.get_bind().dialect.name)(ResponseEvent)
        session.execute(
            statement.on_conflict_do_nothing(index_elements=["response_id", "sequence_number"]),
            [{"response_id": response_id, "sequence_number": e["sequence_number"], "event": e} for e in events],
        )
