"""Managed API keys: created and revoked by the CLI, checked on every request.

Only the sha256 digest of a key is stored; the key itself is shown once, at creation.
A 256-bit random key needs no slow hash: the digest cannot be brute-forced back.
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

from sqlalchemy import exists, select, update

from .models import ApiKey, utcnow

if TYPE_CHECKING:
    from . import Database

KEY_PREFIX = "sk-llmb-"
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

    @classmethod
    def of(cls, row: ApiKey) -> "ApiKeyInfo":
        return cls(
            row.id, row.name, row.description, row.created_at, row.last_used_at, row.revoked, row.rpm, row.tpm, row.tpd
        )


class AmbiguousKey(Exception):
    """A name that several keys share: the key must be named by its id."""


# Requests per minute, tokens per minute, tokens per day of a key (None: unlimited).
KeyLimits = tuple[int | None, int | None, int | None]
LIMIT_NAMES = ("rpm", "tpm", "tpd")


class ApiKeyStore:
    def __init__(self, database: "Database") -> None:
        self._database = database
        self._lock = threading.Lock()
        self._last_written: dict[str, float] = {}
        self._active: tuple[float, bool] | None = None
        self._limits: dict[str, KeyLimits] = {}

    # --- administration (blocking: the CLI calls these directly) ---------------------------

    def create(
        self, name: str, description: str = "", rpm: int | None = None, tpm: int | None = None, tpd: int | None = None
    ) -> tuple[ApiKeyInfo, str]:
        """A new key: its record, and the key itself (shown once, never stored)."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        row = ApiKey(
            id="apikey_" + uuid.uuid4().hex[:24],
            digest=key_digest(key),
            name=name,
            description=description,
            created_at=utcnow(),
            revoked=False,
            rpm=rpm,
            tpm=tpm,
            tpd=tpd,
        )
        with self._database.sessions.begin() as session:
            session.add(row)
        return ApiKeyInfo.of(row), key

    def all(self) -> list[ApiKeyInfo]:
        with self._database.sessions() as session:
            rows = session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id))
            return [ApiKeyInfo.of(row) for row in rows]

    def revoke(self, key_id: str) -> bool:
        """Revoke a key by id; False if there is no such key."""
        with self._database.sessions.begin() as session:
            result = session.execute(update(ApiKey).where(ApiKey.id == key_id).values(revoked=True))
            return result.rowcount > 0

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
            return ApiKeyInfo.of(row)

    def names(self) -> dict[str, str]:
        """Every managed key's id -> its name."""
        with self._database.sessions() as session:
            return {key_id: name for key_id, name in session.execute(select(ApiKey.id, ApiKey.name))}

    # --- request path ------------------------------------------------------------------------

    def _lookup(self, digest: str) -> tuple[str, int | None, int | None, int | None] | None:
        with self._database.sessions() as session:
            row = session.execute(
                select(ApiKey.id, ApiKey.rpm, ApiKey.tpm, ApiKey.tpd).where(ApiKey.digest == digest, ApiKey.revoked.is_(False))
            ).first()
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

    async def authenticate(self, key: str) -> str | None:
        """The id of the active managed key ``key`` is, else None. Records its use (throttled)."""
        return await self.authenticate_digest(key_digest(key))

    async def authenticate_digest(self, digest: str) -> str | None:
        """The same, for the key whose digest (hex) is ``digest``."""
        found = await self._database.run(self._lookup, digest)
        if found is None:
            return None
        key_id, *limits = found
        self._limits[key_id] = tuple(limits)
        if self._due(key_id):
            await self._database.run(self._touch, key_id)
        return key_id

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
