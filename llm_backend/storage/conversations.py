"""Stored Conversations and their ordered items, scoped to the owner that made them.

Items keep the order they were added in (``seq``) and their own ids, unique within a
conversation: an item added again under an id the conversation already has gets a new id
rather than shadowing the first.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Literal

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ..json.types import Json
from .chat_completions import CursorNotFound, Page
from .dml import rows_changed
from .models import ConversationItem, StoredConversation

if TYPE_CHECKING:
    from .handle import DatabaseHandle

Order = Literal["asc", "desc"]


def as_openai(row: StoredConversation) -> Json:
    return {"id": row.id, "object": "conversation", "created_at": row.created_at, "metadata": row.metadata_ or {}}


def _find(session: Session, owner: str, conversation_id: str) -> StoredConversation | None:
    query = select(StoredConversation).where(
        StoredConversation.owner == owner, StoredConversation.id == conversation_id
    )
    return session.scalars(query).one_or_none()


def append_items(session: Session, owner: str, conversation_id: str, items: list[Json]) -> list[Json] | None:
    """Append ``items`` (each with an ``id``) to a conversation inside ``session``'s
    transaction; the items as stored, or None if the owner has no such conversation."""
    conversation = _find(session, owner, conversation_id)
    if conversation is None:
        return None
    ids = set(
        session.scalars(select(ConversationItem.id).where(ConversationItem.conversation_seq == conversation.seq))
    )
    stored = []
    for item in items:
        if item["id"] in ids:
            item = {**item, "id": f"{item['id'].split('_')[0]}_{uuid.uuid4().hex}"}
        ids.add(item["id"])
        session.add(ConversationItem(conversation_seq=conversation.seq, id=item["id"], item=item))
        stored.append(item)
    session.flush()
    return stored


class ConversationStore:
    def __init__(self, database: DatabaseHandle) -> None:
        self._database = database

    def create(self, owner: str, conversation_id: str, created_at: int, metadata: dict[str, str], items: list[Json]) -> Json:
        """A new conversation with its first ``items`` (each with an ``id``), in one transaction."""
        with self._database.sessions.begin() as session:
            row = StoredConversation(id=conversation_id, owner=owner, created_at=created_at, metadata_=dict(metadata))
            session.add(row)
            session.flush()
            append_items(session, owner, conversation_id, items)
            return as_openai(row)

    def get(self, owner: str, conversation_id: str) -> Json | None:
        with self._database.sessions() as session:
            row = _find(session, owner, conversation_id)
            return as_openai(row) if row else None

    def update_metadata(self, owner: str, conversation_id: str, metadata: dict[str, str]) -> Json | None:
        with self._database.sessions.begin() as session:
            row = _find(session, owner, conversation_id)
            if row is None:
                return None
            row.metadata_ = dict(metadata)
            session.flush()
            return as_openai(row)

    def delete(self, owner: str, conversation_id: str) -> bool:
        with self._database.sessions.begin() as session:
            row = _find(session, owner, conversation_id)
            if row is None:
                return False
            # Explicitly, not by the foreign key's cascade: SQLite enforces it only with the pragma on.
            session.execute(delete(ConversationItem).where(ConversationItem.conversation_seq == row.seq))
            session.delete(row)
            return True

    def add_items(self, owner: str, conversation_id: str, items: list[Json]) -> list[Json] | None:
        """Append items; the items as stored (ids may be renewed), or None: no such conversation."""
        with self._database.sessions.begin() as session:
            return append_items(session, owner, conversation_id, items)

    def items(self, owner: str, conversation_id: str) -> list[Json] | None:
        """Every item in order (a response's history), or None: no such conversation."""
        with self._database.sessions() as session:
            row = _find(session, owner, conversation_id)
            if row is None:
                return None
            query = (
                select(ConversationItem.item)
                .where(ConversationItem.conversation_seq == row.seq)
                .order_by(ConversationItem.seq)
            )
            return list(session.scalars(query))

    def list_items(
        self, owner: str, conversation_id: str, *, after: str | None = None, limit: int = 20, order: Order = "desc"
    ) -> Page | None:
        """A page of items; None: no such conversation; ``CursorNotFound`` for an unknown ``after``."""
        with self._database.sessions() as session:
            row = _find(session, owner, conversation_id)
            if row is None:
                return None
            seq = ConversationItem.seq
            query = select(ConversationItem).where(ConversationItem.conversation_seq == row.seq)
            if after is not None:
                cursor = session.scalar(
                    select(seq).where(ConversationItem.conversation_seq == row.seq, ConversationItem.id == after)
                )
                if cursor is None:
                    raise CursorNotFound(after)
                query = query.where(seq > cursor if order == "asc" else seq < cursor)
            query = query.order_by(seq.asc() if order == "asc" else seq.desc()).limit(limit + 1)
            items = [item.item for item in session.scalars(query)]
        return Page(items[:limit], has_more=len(items) > limit)

    def get_item(self, owner: str, conversation_id: str, item_id: str) -> Json | None:
        with self._database.sessions() as session:
            row = _find(session, owner, conversation_id)
            if row is None:
                return None
            return session.scalar(
                select(ConversationItem.item).where(
                    ConversationItem.conversation_seq == row.seq, ConversationItem.id == item_id
                )
            )

    def delete_item(self, owner: str, conversation_id: str, item_id: str) -> Json | None:
        """Remove one item; the conversation, or None if it or the item is not there."""
        with self._database.sessions.begin() as session:
            row = _find(session, owner, conversation_id)
            if row is None:
                return None
            deleted = rows_changed(
                session,
                delete(ConversationItem).where(
                    ConversationItem.conversation_seq == row.seq, ConversationItem.id == item_id
                )
            )
            return as_openai(row) if deleted else None

    def count_items(self) -> int:
        """Items of every conversation of every owner: for tests."""
        with self._database.sessions() as session:
            return session.scalar(select(func.count()).select_from(ConversationItem)) or 0
