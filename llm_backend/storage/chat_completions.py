"""Stored chat completions: every query is scoped to the owner that stored them.

Each method runs one short transaction; callers on the event loop run it in a worker thread
(``await database.run(store.get, ...)``). Rows kept only for audit (``store`` false) are
invisible here except to ``save``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from sqlalchemy import Select, delete, func, select, true
from sqlalchemy.orm import Session

from ..json.types import Json
from .dml import rows_changed
from .models import ChatCompletionMetadata, StoredChatCompletion

if TYPE_CHECKING:
    from .handle import DatabaseHandle

Order = Literal["asc", "desc"]


class CursorNotFound(LookupError):
    """The ``after`` cursor names no object of this owner."""


@dataclass
class NewChatCompletion:
    """What the chat service hands over to be stored."""

    id: str
    owner: str
    model: str
    created: int
    request: Json
    response: Json
    metadata: dict[str, str] = field(default_factory=dict)
    status: Literal["completed", "incomplete"] = "completed"
    store: bool = True


@dataclass
class Page:
    data: list[Json]
    has_more: bool


def as_openai(row: StoredChatCompletion) -> Json:
    """The stored object as the API shows it: the answer, with the current metadata."""
    return {**row.response, "metadata": row.metadata_ or {}}


class ChatCompletionStore:
    def __init__(self, database: DatabaseHandle) -> None:
        self._database = database

    def _visible(self, owner: str) -> Select:
        return select(StoredChatCompletion).where(
            StoredChatCompletion.owner == owner, StoredChatCompletion.store == true()
        )

    def _find(self, session: Session, owner: str, completion_id: str) -> StoredChatCompletion | None:
        query = self._visible(owner).where(StoredChatCompletion.id == completion_id)
        return session.scalars(query).one_or_none()

    def save(self, record: NewChatCompletion) -> None:
        """Store one chat completion; committed when this returns."""
        row = StoredChatCompletion(
            id=record.id,
            owner=record.owner,
            model=record.model,
            created=record.created,
            request=record.request,
            response=record.response,
            status=record.status,
            store=record.store,
        )
        row.set_metadata(record.metadata)
        with self._database.sessions.begin() as session:
            session.add(row)

    def get(self, owner: str, completion_id: str) -> Json | None:
        with self._database.sessions() as session:
            row = self._find(session, owner, completion_id)
            return as_openai(row) if row else None

    def list(
        self,
        owner: str,
        *,
        model: str | None = None,
        metadata: dict[str, str] | None = None,
        after: str | None = None,
        limit: int = 20,
        order: Order = "asc",
    ) -> Page:
        """A page in insertion order; raises ``CursorNotFound`` for an unknown ``after``."""
        seq = StoredChatCompletion.seq
        query = self._visible(owner)
        if model is not None:
            query = query.where(StoredChatCompletion.model == model)
        for key, value in (metadata or {}).items():
            # IN, not a correlated EXISTS: the planners then start from the (key, value) index.
            pairs = select(ChatCompletionMetadata.seq).where(
                ChatCompletionMetadata.key == key, ChatCompletionMetadata.value == value
            )
            query = query.where(seq.in_(pairs))
        with self._database.sessions() as session:
            if after is not None:
                cursor = session.scalar(self._visible(owner).with_only_columns(seq).where(StoredChatCompletion.id == after))
                if cursor is None:
                    raise CursorNotFound(after)
                query = query.where(seq > cursor if order == "asc" else seq < cursor)
            query = query.order_by(seq.asc() if order == "asc" else seq.desc()).limit(limit + 1)
            rows = list(session.scalars(query))
        return Page([as_openai(row) for row in rows[:limit]], has_more=len(rows) > limit)

    def update_metadata(self, owner: str, completion_id: str, metadata: dict[str, str]) -> Json | None:
        with self._database.sessions.begin() as session:
            row = self._find(session, owner, completion_id)
            if row is None:
                return None
            row.set_metadata(metadata)
            session.flush()
            return as_openai(row)

    def delete(self, owner: str, completion_id: str) -> bool:
        with self._database.sessions.begin() as session:
            deleted = rows_changed(
                session,
                delete(StoredChatCompletion).where(
                    StoredChatCompletion.owner == owner,
                    StoredChatCompletion.store == true(),
                    StoredChatCompletion.id == completion_id,
                )
            )
            return deleted > 0

    def request(self, owner: str, completion_id: str) -> Json | None:
        """The request body the completion answered (its ``messages`` among others)."""
        with self._database.sessions() as session:
            row = self._find(session, owner, completion_id)
            return row.request if row else None

    def count(self, owner: str | None = None) -> int:
        with self._database.sessions() as session:
            query = select(func.count()).select_from(StoredChatCompletion)
            if owner is not None:
                query = query.where(StoredChatCompletion.owner == owner)
            return session.scalar(query) or 0

    def status(self, completion_id: str) -> tuple[str, bool] | None:
        """(status, store) of any row, audit rows included: for operators and tests."""
        with self._database.sessions() as session:
            row = session.scalars(
                select(StoredChatCompletion).where(StoredChatCompletion.id == completion_id)
            ).one_or_none()
            return (row.status, row.store) if row else None
