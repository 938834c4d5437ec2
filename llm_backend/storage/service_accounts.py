"""A project's service accounts and their keys, as the Admin API makes and lists them.

A service account is made with its first key in one transaction (the key shown once, as
OpenAI's create answers it); deleting it revokes every key it has. Rows are never removed:
usage and the audit log keep naming them.
"""

from __future__ import annotations

import builtins
import time
import uuid
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from .api_keys import ApiKeyInfo, new_key
from .audit_log import Audit, append_in
from .dml import rows_changed
from .models import ApiKey, Project, ServiceAccount
from .paging import key_page, seq_page

if TYPE_CHECKING:
    from .handle import DatabaseHandle


class ArchivedProject(Exception):
    """The project is archived: nothing new is made in it."""


class ServiceAccountStore:
    def __init__(self, database: DatabaseHandle) -> None:
        self._database = database

    def _active_project(self, session, project_id: str) -> None:
        archived = session.execute(select(Project.archived_at).where(Project.id == project_id)).first()
        if archived is None:
            raise LookupError(project_id)
        if archived[0] is not None:
            raise ArchivedProject(project_id)

    def create(
        self, project_id: str, name: str, with_key: bool = True, audit: Audit = None, key_audit: Audit = None
    ) -> tuple[ServiceAccount, ApiKeyInfo | None, str | None]:
        """(the account, its key's record, the key) - no key when ``with_key`` is false."""
        with self._database.sessions.begin() as session:
            self._active_project(session, project_id)
            account = ServiceAccount(
                id="svc_acct_" + uuid.uuid4().hex[:24], project_id=project_id, name=name,
                role="member" if with_key else "none", created_at=int(time.time()),
            )
            session.add(account)
            append_in(session, audit, account)
            if not with_key:
                return account, None, None
            row, key = new_key(session, name, project_id=project_id, service_account_id=account.id)
            append_in(session, key_audit, row)
        return account, ApiKeyInfo.of(row), key

    def _live(self, project_id: str) -> list:
        return [ServiceAccount.project_id == project_id, ServiceAccount.deleted_at.is_(None)]

    def list(self, project_id: str, after: str | None = None, limit: int = 20) -> tuple[list[ServiceAccount], bool]:
        with self._database.sessions() as session:
            return seq_page(session, ServiceAccount, self._live(project_id), after, limit)

    def get(self, project_id: str, account_id: str) -> ServiceAccount | None:
        with self._database.sessions() as session:
            return session.scalar(select(ServiceAccount).where(*self._live(project_id), ServiceAccount.id == account_id))

    def update(self, project_id: str, account_id: str, values: dict[str, str], audit: Audit = None) -> ServiceAccount | None:
        with self._database.sessions.begin() as session:
            account = session.scalar(select(ServiceAccount).where(*self._live(project_id), ServiceAccount.id == account_id))
            if account is not None:
                for name, value in values.items():
                    setattr(account, name, value)
                append_in(session, audit, account)
            return account

    def delete(self, project_id: str, account_id: str, audit: Audit = None) -> bool:
        """The account gone from the API and every key of it revoked, in one transaction."""
        with self._database.sessions.begin() as session:
            deleted = rows_changed(
                session,
                update(ServiceAccount).where(*self._live(project_id), ServiceAccount.id == account_id).values(deleted_at=int(time.time()))
            )
            if deleted:
                session.execute(update(ApiKey).where(ApiKey.service_account_id == account_id).values(revoked=True))
                append_in(session, audit, account_id)
            return bool(deleted)

    def add_key(self, project_id: str, account_id: str, name: str | None, audit: Audit = None) -> tuple[ApiKeyInfo, str] | None:
        """Another key for a service account (None: no such account)."""
        with self._database.sessions.begin() as session:
            self._active_project(session, project_id)
            account = session.scalar(select(ServiceAccount).where(*self._live(project_id), ServiceAccount.id == account_id))
            if account is None:
                return None
            if account.role == "none":
                account.role = "member"  # made without a key (create_service_account_only): now it has one
            row, key = new_key(session, name or account.name, project_id=project_id, service_account_id=account_id)
            append_in(session, audit, row)
        return ApiKeyInfo.of(row), key

    # --- the project's keys ---------------------------------------------------------------------

    def _keys(self, project_id: str) -> builtins.list:
        return [ApiKey.project_id == project_id, ApiKey.revoked.is_(False), ApiKey.admin.is_(False)]

    def keys(self, project_id: str, after: str | None = None, limit: int = 20) -> tuple[builtins.list[ApiKeyInfo], bool]:
        """A page of the project's active keys, oldest first (``after``: a key id)."""
        with self._database.sessions() as session:
            rows, has_more = key_page(session, self._keys(project_id), after, limit)
        return [ApiKeyInfo.of(row) for row in rows], has_more

    def key(self, project_id: str, key_id: str) -> ApiKeyInfo | None:
        with self._database.sessions() as session:
            row = session.scalar(select(ApiKey).where(*self._keys(project_id), ApiKey.id == key_id))
            return None if row is None else ApiKeyInfo.of(row)

    def delete_key(self, project_id: str, key_id: str, audit: Audit = None) -> bool:
        with self._database.sessions.begin() as session:
            revoked = rows_changed(session, update(ApiKey).where(*self._keys(project_id), ApiKey.id == key_id).values(revoked=True))
            if revoked:
                append_in(session, audit, key_id)
            return bool(revoked)

    def accounts(self, ids: set[str]) -> dict[str, ServiceAccount]:
        """The service accounts of ``ids`` (deleted ones too), by id: the owners keys name."""
        if not ids:
            return {}
        with self._database.sessions() as session:
            return {row.id: row for row in session.scalars(select(ServiceAccount).where(ServiceAccount.id.in_(ids)))}
