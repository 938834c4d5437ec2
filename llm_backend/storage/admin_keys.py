"""The organisation's managed admin keys (the Admin API's ``admin_api_keys``): ``api_keys``
rows with ``admin`` set and no project. Static admin keys (``LLM_BACKEND_ADMIN_KEYS``) are
settings, not rows: they are not listed here."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from .api_keys import ApiKeyInfo, new_key
from .audit_log import Audit, append_in
from .dml import rows_changed
from .models import ApiKey, utcnow
from .paging import key_page

if TYPE_CHECKING:
    from .handle import DatabaseHandle

LIVE = (ApiKey.admin.is_(True), ApiKey.revoked.is_(False))


class AdminKeyStore:
    def __init__(self, database: DatabaseHandle) -> None:
        self._database = database

    def create(self, name: str, expires_in_seconds: int | None = None, audit: Audit = None) -> tuple[ApiKeyInfo, str]:
        expires_at = utcnow() + timedelta(seconds=expires_in_seconds) if expires_in_seconds else None
        with self._database.sessions.begin() as session:
            row, key = new_key(session, name, project_id=None, admin=True, expires_at=expires_at)
            append_in(session, audit, row)
        return ApiKeyInfo.of(row), key

    def list(self, after: str | None = None, limit: int = 20, order: str = "asc") -> tuple[list[ApiKeyInfo], bool]:
        with self._database.sessions() as session:
            rows, has_more = key_page(session, list(LIVE), after, limit, order)
        return [ApiKeyInfo.of(row) for row in rows], has_more

    def get(self, key_id: str) -> ApiKeyInfo | None:
        with self._database.sessions() as session:
            row = session.scalar(select(ApiKey).where(*LIVE, ApiKey.id == key_id))
            return None if row is None else ApiKeyInfo.of(row)

    def delete(self, key_id: str, audit: Audit = None) -> bool:
        """Revoked at once, on every replica (the lookup reads the row each request)."""
        with self._database.sessions.begin() as session:
            revoked = rows_changed(session, update(ApiKey).where(*LIVE, ApiKey.id == key_id).values(revoked=True))
            if revoked:
                append_in(session, audit, key_id)
            return bool(revoked)
