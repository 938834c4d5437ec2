"""Projects, the tenants (docs/ADMIN.md): made, listed, renamed and archived by the Admin API
and ``llm-backend keys``; static ones (their id is static keys' owner) made at start-up.

``archived`` answers, for a static key's request, whether its project was archived, from
the control plane's snapshot (``admin_snapshot.py``: read again at most every
``control_plane_refresh_seconds``, 2 s; a managed key's lookup joins its project instead, so
it stops at once on every replica): a static key of a project archived on another replica
stops within that time, on this one at once.
"""

from __future__ import annotations

import builtins
import time
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from .audit_log import Audit, append_in
from .dml import conflict_insert, rows_changed
from .models import Project
from .paging import seq_page

if TYPE_CHECKING:
    from .handle import DatabaseHandle



def new_project_id() -> str:
    return "proj_" + uuid.uuid4().hex[:24]


class ProjectStore:
    def __init__(self, database: DatabaseHandle) -> None:
        self._database = database

    # --- administration (blocking) ------------------------------------------------------------

    def create(self, name: str, audit: Audit = None) -> Project:
        row = Project(id=new_project_id(), name=name, created_at=int(time.time()), static=False)
        with self._database.sessions.begin() as session:
            session.add(row)
            append_in(session, audit, row)
        return row

    def get(self, project_id: str) -> Project | None:
        with self._database.sessions() as session:
            return session.scalar(select(Project).where(Project.id == project_id))

    def list(self, after: str | None = None, limit: int = 20, include_archived: bool = False) -> tuple[list[Project], bool]:
        where = [] if include_archived else [Project.archived_at.is_(None)]
        with self._database.sessions() as session:
            return seq_page(session, Project, where, after, limit)

    def change(self, project_id: str, values: dict[str, Any], audit: Audit = None) -> Project | None:
        """The project with ``values`` set (name, retention, hosted_tools); None when there is none."""
        with self._database.sessions.begin() as session:
            row = session.scalar(select(Project).where(Project.id == project_id).with_for_update())
            if row is None:
                return None
            for name, value in values.items():
                setattr(row, name, value)
            append_in(session, audit, row)
        self._database.admin_snapshot.changed()
        return row

    def archive(self, project_id: str, audit: Audit = None) -> Project | None:
        """The project, archived (once: archiving it again changes and logs nothing)."""
        with self._database.sessions.begin() as session:
            archived = rows_changed(
                session,
                update(Project).where(Project.id == project_id, Project.archived_at.is_(None)).values(archived_at=int(time.time()))
            )
            row = session.scalar(select(Project).where(Project.id == project_id))
            if archived:
                append_in(session, audit, row)
        self._database.admin_snapshot.changed()
        return row

    def ensure_static(self, owners: builtins.list[str]) -> None:
        """A static project for each static keys' owner that has none (replicas starting
        together: the first insert wins, the others do nothing)."""
        if not owners:
            return
        insert = conflict_insert(self._database.dialect)
        now = int(time.time())
        rows = [{"id": owner, "name": owner, "created_at": now, "static": True, "retention": "organization_default"} for owner in owners]
        with self._database.sessions.begin() as session:
            session.execute(insert(Project).values(rows).on_conflict_do_nothing(index_elements=["id"]))

    def retention_types(self) -> dict[str, str]:
        """Each active project's data retention type."""
        with self._database.sessions() as session:
            return dict(session.execute(select(Project.id, Project.retention).where(Project.archived_at.is_(None))).all())

    def names(self) -> dict[str, str]:
        with self._database.sessions() as session:
            return dict(session.execute(select(Project.id, Project.name)).all())

    # --- request path --------------------------------------------------------------------------

    async def archived(self, project_id: str) -> bool:
        """Whether ``project_id`` is archived (``admin_snapshot.py``'s snapshot)."""
        return project_id in (await self._database.admin_snapshot.current()).archived
