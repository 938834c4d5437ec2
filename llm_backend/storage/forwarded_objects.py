"""Who owns each object an upstream keeps for us: one row per id (serving/ownership.py says
when a row is written and what it allows).

The first owner of an id keeps it: a claim of an id already recorded changes nothing
(``INSERT ... ON CONFLICT DO NOTHING``, atomic on PostgreSQL when replicas race). An id
that cannot be stored (too long, a NUL character) is never recorded, so it is nobody's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from .dml import conflict_insert
from .models import ForwardedObject, utcnow
from .storable import StoredText

if TYPE_CHECKING:
    from .handle import DatabaseHandle


def _length(column: str) -> int:
    """The characters ``column`` holds: its ``StoredText``'s bound."""
    stored = ForwardedObject.__table__.c[column].type
    if not isinstance(stored, StoredText) or stored.limit is None:
        raise TypeError(f"forwarded_objects.{column} is not a bounded StoredText")
    return stored.limit


ID_LENGTH = _length("id")
KIND_LENGTH = _length("kind")

# Ids per query: far below every database's bound on parameters.
CHUNK = 500


def storable(object_id: object) -> bool:
    return isinstance(object_id, str) and 0 < len(object_id) <= ID_LENGTH and "\x00" not in object_id


class ForwardedObjects:
    def __init__(self, database: DatabaseHandle) -> None:
        self._database = database
        self._insert = conflict_insert(database.dialect)

    def _owners(self, ids: list[str]) -> dict[str, tuple[str, str]]:
        found = {}
        with self._database.sessions() as session:
            for start in range(0, len(ids), CHUNK):
                rows = session.execute(
                    select(ForwardedObject.id, ForwardedObject.owner, ForwardedObject.kind).where(
                        ForwardedObject.id.in_(ids[start : start + CHUNK])
                    )
                )
                found.update({object_id: (owner, kind) for object_id, owner, kind in rows})
        return found

    async def owners(self, ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        """The recorded ones of ``ids``: id -> (owner, kind)."""
        wanted = sorted({object_id for object_id in ids if storable(object_id)})
        return await self._database.run(self._owners, wanted) if wanted else {}

    def _claim(self, owner: str, objects: dict[str, str]) -> None:
        now = utcnow()
        rows = [{"id": object_id, "owner": owner, "kind": kind, "created_at": now} for object_id, kind in objects.items()]
        with self._database.sessions.begin() as session:
            for start in range(0, len(rows), CHUNK):
                statement = self._insert(ForwardedObject).values(rows[start : start + CHUNK])
                session.execute(statement.on_conflict_do_nothing(index_elements=["id"]))

    async def claim(self, owner: str, objects: Mapping[str, str]) -> None:
        """Record ``objects`` (id -> kind) as ``owner``'s, except ids recorded already."""
        wanted = {object_id: kind[:KIND_LENGTH] for object_id, kind in objects.items() if storable(object_id)}
        if wanted:
            await self._database.run(self._claim, owner, wanted)

    def _forget(self, owner: str, object_id: str) -> None:
        with self._database.sessions.begin() as session:
            session.execute(delete(ForwardedObject).where(ForwardedObject.id == object_id, ForwardedObject.owner == owner))

    async def forget(self, owner: str, object_id: str) -> None:
        """``owner``'s object ``object_id`` is gone (deleted through us)."""
        if storable(object_id):
            await self._database.run(self._forget, owner, object_id)
