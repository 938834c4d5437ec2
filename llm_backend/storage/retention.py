"""Data retention: the organisation's type (a setting row) and what a project keeps past its
period (docs/ADMIN.md): the ids of its stored objects made before a time, for the sweeper
(serving/admin/retention.py) to delete through each family's own store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from .audit_log import Audit, append_in
from .models import OrganizationSetting, StoredChatCompletion, StoredConversation, StoredFile, StoredResponse, VectorStore

if TYPE_CHECKING:
    from .handle import DatabaseHandle

RETENTION = "data_retention"
# Responses still running are never swept (their process finishes them first).
UNFINISHED = ("queued", "in_progress")


class RetentionStore:
    def __init__(self, database: DatabaseHandle) -> None:
        self._database = database

    def organization_type(self) -> str | None:
        """The organisation's retention type; None: never set (objects kept until deleted)."""
        with self._database.sessions() as session:
            row = session.get(OrganizationSetting, RETENTION)
            return None if row is None else row.value

    def set_organization_type(self, retention_type: str, audit: Audit = None) -> str:
        with self._database.sessions.begin() as session:
            row = session.get(OrganizationSetting, RETENTION, with_for_update=True)
            if row is None:
                session.add(OrganizationSetting(name=RETENTION, value=retention_type))
            else:
                row.value = retention_type
            append_in(session, audit, "organization")
        return retention_type

    def older_than(self, project_id: str, cutoff: int, limit: int) -> dict[str, list[str]]:
        """Per family, up to ``limit`` ids of ``project_id``'s objects made before ``cutoff``."""
        queries: dict[str, Any] = {
            "chat_completions": select(StoredChatCompletion.id).where(
                StoredChatCompletion.owner == project_id, StoredChatCompletion.created < cutoff
            ),
            "responses": select(StoredResponse.id).where(
                StoredResponse.owner == project_id, StoredResponse.created_at < cutoff, StoredResponse.status.not_in(UNFINISHED)
            ),
            "conversations": select(StoredConversation.id).where(
                StoredConversation.owner == project_id, StoredConversation.created_at < cutoff
            ),
            "files": select(StoredFile.id).where(StoredFile.owner == project_id, StoredFile.created_at < cutoff),
            "vector_stores": select(VectorStore.id).where(VectorStore.owner == project_id, VectorStore.created_at < cutoff),
        }
        with self._database.sessions() as session:
            return {family: list(session.scalars(query.limit(limit))) for family, query in queries.items()}
