"""Who owns what: objects kept upstream, positional owners carried over (revision 0009)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger
from sqlalchemy.orm import Mapped, mapped_column

from ..storable import StoredText
from .base import Base, utcnow


class ForwardedObject(Base):
    """An object an upstream keeps (a file, batch, vector store... created through a
    forwarded request), and the key that owns it here: only that key reaches it through
    this service (serving/ownership.py). Ids are the upstream's, never rewritten."""

    __tablename__ = "forwarded_objects"

    id: Mapped[str] = mapped_column(StoredText(256), primary_key=True)
    owner: Mapped[str] = mapped_column(StoredText(128))
    kind: Mapped[str] = mapped_column(StoredText(64))  # the object's ``object`` ("file", "batch"), or the field naming it
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

class OwnerRename(Base):
    """One positional owner of a static key (``key-0``, ``admin-1``) carried over to the
    same key's owner today, when revision 0009 was applied: the record that it was done."""

    __tablename__ = "owner_renames"

    old_owner: Mapped[str] = mapped_column(StoredText(128), primary_key=True)
    new_owner: Mapped[str] = mapped_column(StoredText(128))
    rows: Mapped[int] = mapped_column(BigInteger)  # rows renamed, over every table
    renamed_at: Mapped[datetime] = mapped_column(default=utcnow)
