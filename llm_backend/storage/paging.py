"""One page of rows in the order they were made (their ``seq``), after the row whose id is
``after``: the cursor every list of the control plane's objects takes, as OpenAI's lists do."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from .models import ApiKey


def seq_page(session: Session, model: Any, where: list, after: str | None, limit: int, order: str = "asc") -> tuple[list, bool]:
    """(rows, has_more): up to ``limit`` rows of ``model`` matching ``where``, after ``after``
    (an id; ``LookupError`` when no such row matches ``where``)."""
    query = select(model).where(*where)
    if after is not None:
        cursor = session.scalar(select(model.seq).where(*where, model.id == after))
        if cursor is None:
            raise LookupError(after)
        query = query.where(model.seq > cursor if order == "asc" else model.seq < cursor)
    ordered = model.seq.asc() if order == "asc" else model.seq.desc()
    rows = list(session.scalars(query.order_by(ordered).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def key_page(session: Session, where: list, after: str | None, limit: int, order: str = "asc") -> tuple[list, bool]:
    """The same for keys, which have no ``seq``: made-at order, then id."""
    query = select(ApiKey).where(*where)
    ascending = order == "asc"
    if after is not None:
        cursor = session.execute(select(ApiKey.created_at, ApiKey.id).where(*where, ApiKey.id == after)).first()
        if cursor is None:
            raise LookupError(after)
        created, key_id = cursor
        if ascending:
            query = query.where(or_(ApiKey.created_at > created, and_(ApiKey.created_at == created, ApiKey.id > key_id)))
        else:
            query = query.where(or_(ApiKey.created_at < created, and_(ApiKey.created_at == created, ApiKey.id < key_id)))
    columns = (ApiKey.created_at, ApiKey.id) if ascending else (ApiKey.created_at.desc(), ApiKey.id.desc())
    rows = list(session.scalars(query.order_by(*columns).limit(limit + 1)))
    return rows[:limit], len(rows) > limit
