"""Managed API keys: a project's (its service accounts' keys) and the organisation's admin
keys; made and revoked by the Admin API and the CLI, checked on every request.

Only the sha256 digest of a key is stored; the key itself is shown once, at creation.
A 256-bit random key needs no slow hash: the digest cannot be brute-forced back. A key is
found only while it is not revoked, not expired, and its project is not archived (one
query, joined: every replica refuses it from the next request on).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import exists, or_, select, update
from sqlalchemy.orm import Session

from ..auth import ManagedKey
from .audit_log import insert_entries, new_entry
from .models import ApiKey, Project, ServiceAccount, utcnow
from .projects import new_project_id

if TYPE_CHECKING:
    from .handle import DatabaseHandle

KEY_PREFIX = "sk-llmb-"
ADMIN_KEY_PREFIX = "sk-llmb-admin-"
# A key's last-used time is written at most this often, not on every request.
LAST_USED_INTERVAL = 60.0
# How long "are there any managed keys?" is remembered (decides whether auth is enforced).
ACTIVE_CHECK_INTERVAL = 5.0


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKeyInfo:
    id: str
    name: str
    description: str
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool
    rpm: int | None = None
    tpm: int | None = None
    tpd: int | None = None
    project_id: str | None = None
    service_account_id: str | None = None
    admin: bool = False
    expires_at: datetime | None = None
    redacted_value: str = KEY_PREFIX + "…"

    @classmethod
    def of(cls, row: ApiKey) -> "ApiKeyInfo":
        return cls(
            row.id, row.name, row.description, row.created_at, row.last_used_at, row.revoked, row.rpm, row.tpm, row.tpd,
            row.project_id, row.service_account_id, row.admin, row.expires_at, row.redacted_value,
        )


def new_key(
    session: Session, name: str, *, project_id: str | None, service_account_id: str | None = None, admin: bool = False,
    expires_at: datetime | None = None, description: str = "", limits: dict[str, int | None] | None = None,
) -> tuple[ApiKey, str]:
    """A new key's row, added to ``session``, and the key itself (shown once, never stored)."""
    key = (ADMIN_KEY_PREFIX if admin else KEY_PREFIX) + secrets.token_urlsafe(32)
    row = ApiKey(
        id=("key_" if admin else "apikey_") + uuid.uuid4().hex[:24],
        digest=key_digest(key),
        name=name,
        description=description,
        created_at=utcnow(),
        revoked=False,
        project_id=project_id,
        service_account_id=service_account_id,
        admin=admin,
        expires_at=expires_at,
        redacted_value=f"{key[:len(ADMIN_KEY_PREFIX if admin else KEY_PREFIX) + 3]}…{key[-4:]}",
        **(limits or {}),
    )
    session.add(row)
    return row, key


class AmbiguousKey(Exception):
    """A name that several keys share: the key must be named by its id."""


# The actor the audit log names for a change made on the command line (``llm-backend keys``).
CLI_ACTOR = {"type": "session", "session": {"user": {"id": "llm-backend-cli"}}}


def _logged(session: Session, type: str, details: dict, resource_id: str, project_id: str | None) -> None:
    """An audit log entry of a change made on the command line, in its transaction."""
    entry = new_entry(type, {type: {"id": resource_id, **details}}, actor=CLI_ACTOR, actor_id="llm-backend-cli",
                      project=(project_id, None) if project_id else None, resource_id=resource_id)
    insert_entries(session, [entry])


# Requests per minute, tokens per minute, tokens per day of a key (None: unlimited).
KeyLimits = tuple[int | None, int | None, int | None]
LIMIT_NAMES = ("rpm", "tpm", "tpd")


class ApiKeyStore:
    def __init__(self, database: DatabaseHandle) -> None:
        self._database = database
        self._lock = threading.Lock()
        self._last_written: dict[str, float] = {}
        self._active: tuple[float, bool] | None = None
        self._limits: dict[str, KeyLimits] = {}

    # --- administration (blocking: the CLI calls these directly) ---------------------------

    def create(
        self, name: str, description: str = "", rpm: int | None = None, tpm: int | None = None, tpd: int | None = None,
        project_id: str | None = None,
    ) -> tuple[ApiKeyInfo, str]:
        """A new key of a service account named ``name`` in ``project_id``: its record, and
        the key itself (shown once, never stored). Without a project, a new one named
        ``name`` (a tenant of its own, as every managed key was before projects); an unknown
        or archived project: ``LookupError``."""
        now = int(time.time())
        with self._database.sessions.begin() as session:
            if project_id is None:
                project_id = new_project_id()
                session.add(Project(id=project_id, name=name, created_at=now, static=False))
            elif session.scalar(select(Project.id).where(Project.id == project_id, Project.archived_at.is_(None))) is None:
                raise LookupError(project_id)
            account = ServiceAccount(id="svc_acct_" + uuid.uuid4().hex[:24], project_id=project_id, name=name, role="member", created_at=now)
            session.add(account)
            row, key = new_key(
                session, name, project_id=project_id, service_account_id=account.id, description=description,
                limits={"rpm": rpm, "tpm": tpm, "tpd": tpd},
            )
            session.flush()
            _logged(session, "api_key.created", {"data": {"scopes": []}}, row.id, project_id)
        return ApiKeyInfo.of(row), key

    def create_admin(self, name: str) -> tuple[ApiKeyInfo, str]:
        """A new admin key (the organisation's: every admin operation), made on the command line."""
        with self._database.sessions.begin() as session:
            row, key = new_key(session, name, project_id=None, admin=True)
            session.flush()
            _logged(session, "tenant.admin_api_key.created", {"data": {"name": name}}, row.id, None)
        return ApiKeyInfo.of(row), key

    def all(self) -> list[ApiKeyInfo]:
        with self._database.sessions() as session:
            rows = session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id))
            return [ApiKeyInfo.of(row) for row in rows]

    def revoke(self, key_id: str) -> bool:
        """Revoke a key by id (logged, as made on the command line); False if there is no such key."""
        with self._database.sessions.begin() as session:
            row = session.get(ApiKey, key_id, with_for_update=True)
            if row is None:
                return False
            if not row.revoked:
                row.revoked = True
                _logged(session, "tenant.admin_api_key.deleted" if row.admin else "api_key.deleted", {}, key_id, row.project_id)
            return True

    def update(self, id_or_name: str, **limits: int | None) -> ApiKeyInfo | None:
        """Set some of a key's limits (``rpm``, ``tpm``, ``tpd``; None: unlimited). The key is
        named by its id or its name; None when there is no such key, ``AmbiguousKey`` when
        several share the name. Servers apply it at the key's next request."""
        with self._database.sessions.begin() as session:
            row = session.get(ApiKey, id_or_name)
            if row is None:
                rows = session.scalars(select(ApiKey).where(ApiKey.name == id_or_name, ApiKey.revoked.is_(False))).all()
                if len(rows) > 1:
                    raise AmbiguousKey(id_or_name)
                row = rows[0] if rows else None
            if row is None:
                return None
            for name, value in limits.items():
                if name not in LIMIT_NAMES:
                    raise TypeError(f"not a limit: {name}")
                setattr(row, name, value)
            _logged(session, "api_key.updated", {"changes_requested": dict(limits)}, row.id, row.project_id)
            return ApiKeyInfo.of(row)

    def names(self) -> dict[str, str]:
        """Every managed key's id -> its name."""
        with self._database.sessions() as session:
            return {key_id: name for key_id, name in session.execute(select(ApiKey.id, ApiKey.name))}

    # --- request path ------------------------------------------------------------------------

    def _lookup(self, digest: str, column=ApiKey.digest) -> tuple | None:
        """(id, rpm, tpm, tpd, project, admin) of the active key whose digest (or ``column``)
        is ``digest``: not revoked, not expired, of a project that is not archived (admin
        keys have none)."""
        query = (
            select(ApiKey.id, ApiKey.rpm, ApiKey.tpm, ApiKey.tpd, ApiKey.project_id, ApiKey.admin)
            .outerjoin(Project, Project.id == ApiKey.project_id)
            .where(
                column == digest,
                ApiKey.revoked.is_(False),
                or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > utcnow()),
                or_(ApiKey.project_id.is_(None), Project.archived_at.is_(None)),
            )
        )
        with self._database.sessions() as session:
            row = session.execute(query).first()
            return None if row is None else tuple(row)

    def _any_created(self) -> bool:
        with self._database.sessions() as session:
            return bool(session.scalar(select(exists().where(ApiKey.id.is_not(None)))))

    def _touch(self, key_id: str) -> None:
        with self._database.sessions.begin() as session:
            session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=utcnow()))

    def _due(self, key_id: str) -> bool:
        now = time.monotonic()
        with self._lock:
            last = self._last_written.get(key_id)
            if last is not None and now - last < LAST_USED_INTERVAL:
                return False
            self._last_written[key_id] = now
            return True

    async def authenticate(self, key: str) -> ManagedKey | None:
        """The active managed key ``key`` is, else None. Records its use (throttled)."""
        return await self.authenticate_digest(key_digest(key))

    async def authenticate_digest(self, digest: str) -> ManagedKey | None:
        """The same, for the key whose digest (hex) is ``digest``."""
        return await self._found(await self._database.run(self._lookup, digest))

    async def authenticate_id(self, key_id: str) -> ManagedKey | None:
        """The same, for the key whose id is ``key_id``: work it made earlier (a batch's
        lines) runs only while the key would be let in."""
        return await self._found(await self._database.run(self._lookup, key_id, ApiKey.id))

    async def _found(self, found: tuple | None) -> ManagedKey | None:
        if found is None:
            return None
        key_id, rpm, tpm, tpd, project_id, admin = found
        self._limits[key_id] = (rpm, tpm, tpd)
        if self._due(key_id):
            await self._database.run(self._touch, key_id)
        return ManagedKey(key_id, project_id, bool(admin))

    def limits(self, key_id: str) -> KeyLimits | None:
        """(requests, tokens) per minute and tokens per day of a managed key as of its last
        authentication; None for an id that is not a managed key's."""
        return self._limits.get(key_id)

    async def any_created(self) -> bool:
        """Whether a managed key was ever created, revoked ones too (remembered for a few
        seconds; once true, for good): from then on the service is closed to a request
        without a valid key, even with every key revoked (issue #33: revoking the last one
        once opened the service to everyone)."""
        now = time.monotonic()
        if self._active is None or (not self._active[1] and now - self._active[0] > ACTIVE_CHECK_INTERVAL):
            self._active = (now, await self._database.run(self._any_created))
        return self._active[1]
