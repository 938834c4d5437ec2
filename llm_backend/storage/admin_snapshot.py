"""What the control plane has set, as every request needs it: archived projects, projects'
per-model rate limits, hard spend limits and alerts, hosted tool permissions (docs/ADMIN.md).

Read as one snapshot, again at most every ``refresh_seconds`` (the setting
``control_plane_refresh_seconds``, 2 s; and at once after a change made by this process): a
setting changed on another replica applies here within that time.
This is configuration only - every count a limit is held to (requests, tokens, spend) lives
in the database and is admitted by one atomic statement, never read from this process's
memory first. A snapshot that cannot be read leaves the last one standing (a database
outage must not lift an archive or a limit).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from .models import Project, ProjectRateLimit, SpendAlert, SpendLimit

if TYPE_CHECKING:
    from .handle import DatabaseHandle

log = logging.getLogger(__name__)
LIMIT_NAMES = (
    "max_requests_per_1_minute", "max_tokens_per_1_minute", "max_images_per_1_minute",
    "max_audio_megabytes_per_1_minute", "max_requests_per_1_day", "batch_1_day_max_input_tokens",
)


@dataclass(frozen=True)
class ModelLimits:
    """A project's limits on one model (None: no limit)."""

    max_requests_per_1_minute: int | None = None
    max_tokens_per_1_minute: int | None = None
    max_images_per_1_minute: int | None = None
    max_audio_megabytes_per_1_minute: int | None = None
    max_requests_per_1_day: int | None = None
    batch_1_day_max_input_tokens: int | None = None

    @classmethod
    def of(cls, row: Any) -> "ModelLimits":
        return cls(*(getattr(row, name) for name in LIMIT_NAMES))


@dataclass(frozen=True)
class Alert:
    id: str
    scope: str  # "" (the organisation) or a project id
    threshold_cents: int
    notification_channel: dict[str, Any]


@dataclass
class Snapshot:
    archived: frozenset[str] = frozenset()
    rate_limits: dict[tuple[str, str], ModelLimits] = field(default_factory=dict)  # (project, model)
    hosted_tools: dict[str, dict[str, Any]] = field(default_factory=dict)  # project -> {tool: enabled}
    spend_limits: dict[str, int] = field(default_factory=dict)  # "" (the organisation) or a project -> cents a month
    alerts: tuple[Alert, ...] = ()


class AdminSnapshot:
    def __init__(self, database: DatabaseHandle) -> None:
        self._database = database
        self.refresh_seconds = 2.0  # set from the settings by the app
        self._snapshot = Snapshot()
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()

    def _read(self) -> Snapshot:
        with self._database.sessions() as session:
            projects = session.execute(select(Project.id, Project.archived_at, Project.hosted_tools)).all()
            limits = session.scalars(select(ProjectRateLimit)).all()
            spend_limits = dict(session.execute(select(SpendLimit.scope, SpendLimit.threshold_cents)).all())
            alerts = tuple(
                Alert(row.id, row.scope, row.threshold_cents, row.notification_channel)
                for row in session.scalars(select(SpendAlert).order_by(SpendAlert.seq))
            )
        return Snapshot(
            archived=frozenset(project_id for project_id, archived_at, _ in projects if archived_at is not None),
            rate_limits={(row.project_id, row.model): ModelLimits.of(row) for row in limits},
            hosted_tools={project_id: tools for project_id, _, tools in projects if tools},
            spend_limits=spend_limits,
            alerts=alerts,
        )

    def changed(self) -> None:
        """A setting changed here: the next request reads the snapshot again."""
        self._read_at = float("-inf")

    def last(self) -> Snapshot:
        """The snapshot as last read (for what cannot wait for a read: spending an answer's tokens)."""
        return self._snapshot

    async def current(self) -> Snapshot:
        if time.monotonic() - self._read_at > self.refresh_seconds:
            async with self._lock:  # one read for the requests that find it stale together
                if time.monotonic() - self._read_at > self.refresh_seconds:
                    try:
                        self._snapshot = await self._database.run(self._read)
                        self._read_at = time.monotonic()
                    except Exception:
                        log.warning("the control plane's settings were not read; the last ones read stand", exc_info=True)
        return self._snapshot
