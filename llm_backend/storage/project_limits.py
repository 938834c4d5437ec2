"""Projects' per-model rate limits as the Admin API sets and lists them (their counting:
``rate_counters.py``; as requests read them: ``admin_snapshot.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from .audit_log import Audit, append_in
from .admin_snapshot import LIMIT_NAMES, ModelLimits
from .models import ProjectRateLimit

if TYPE_CHECKING:
    from .handle import DatabaseHandle


class ProjectLimitStore:
    def __init__(self, database: DatabaseHandle) -> None:
        self._database = database

    def of(self, project_id: str) -> dict[str, ModelLimits]:
        """Model -> limits of every model the project has limits on."""
        with self._database.sessions() as session:
            rows = session.scalars(select(ProjectRateLimit).where(ProjectRateLimit.project_id == project_id))
            return {row.model: ModelLimits.of(row) for row in rows}

    def set(self, project_id: str, model: str, values: dict[str, int | None], audit: Audit = None) -> ModelLimits:
        """The project's limits on ``model`` with ``values`` set (None: no limit), logged."""
        unknown = set(values) - set(LIMIT_NAMES)
        if unknown:
            raise TypeError(f"not a limit: {sorted(unknown)}")
        with self._database.sessions.begin() as session:
            row = session.get(ProjectRateLimit, (project_id, model), with_for_update=True)
            if row is None:
                row = ProjectRateLimit(project_id=project_id, model=model)
                session.add(row)
            for name, value in values.items():
                setattr(row, name, value)
            append_in(session, audit, model)
            limits = ModelLimits.of(row)
        self._database.admin_snapshot.changed()
        return limits
