"""Bearer API keys: who is calling, decided in one place.

Keys are kept only as sha256 digests and compared in constant time, so neither memory
dumps of the settings nor timing reveal them. Connexion calls us for every operation
whose spec declares a bearer security scheme (``http/security.py``), and the fast lane
asks the same ``Authenticator``.

Two kinds of keys: API keys (``api_keys``) call the OpenAI operations; admin keys
(``admin_keys``) call those and the admin operations (the OpenAI document's
``AdminApiKeyAuth``, extensions.yaml's ``x-admin`` scheme). With no key configured at all,
everyone is let in (the service then listens on loopback only, see ``Settings.check_bind``).

A key's tenant is its **project** (``Principal.owner``, the owner of what it stores): any
key of a project sees the project's objects. A managed key belongs to the project it was
made in (``storage/api_keys.py``); a static key given as ``name=key`` to the project whose
id is its name (several keys may share one: a key rotated keeps its project), an unnamed
one to the project named by a digest of the key itself (``derived_owner``). The key itself
is ``Principal.key`` (a managed key's id, a static key's owner), what usage and the audit
log name. An archived project's keys stop working (401), but for admin keys: as OpenAI's,
they are the organisation's, not a project's (a static admin key's project only holds what
it stores), and one locked out by its project's archive could never undo it (there is no
unarchive) nor do any admin operation again. Until named keys, a static key's
owner was its position (``key-0``, ``admin-0``); ``legacy_owners`` maps those once, when the
database is upgraded (docs/SECURITY.md, docs/ADMIN.md).

Beside the keys, in this package (rank -1): ``audit_key.py``, the audit log's key
(``audit_log_key``, else one kept in the data directory) that seals each entry to the one
before it (``storage/audit_chain.py``); ``client_secrets.py``, the Realtime API's ephemeral
client secrets: sealed tokens (AES-GCM under ``realtime_secret_key``: the making key's
digest, an expiry, the session, an id), opaque to their holder, never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from .. import errors
from ..errors import OpenAIError

ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Principal:
    """The caller a key belongs to: stored objects are owned by ``owner`` (its project);
    ``key_id`` is the key's own id when it is not the owner (a managed key's)."""

    owner: str
    admin: bool = False
    key_id: str | None = None

    @property
    def key(self) -> str:
        """The key, as usage, rate limits per key and the audit log name it (never the key itself)."""
        return self.key_id or self.owner

    def token_info(self) -> dict:
        return {"sub": self.owner, "admin": self.admin}


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


# A static key's name: what operators read in usage, metrics and logs.
OWNER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
# Owners a name may not take: derived and positional owners, managed key and project ids.
RESERVED_PREFIXES = ("key-", "admin-", "apikey_", "key_", "proj_", "svc_acct_")


class KeyEntryError(ValueError):
    """A key setting that cannot be used; the message names the entry, never the key."""


def derived_owner(key: str) -> str:
    """The owner of an unnamed key: 64 bits of a digest of the key (domain-separated from
    the digest keys are checked by), the same in every replica and list position; a strong
    key cannot be found back from it (name weak keys)."""
    return "key-" + hashlib.sha256(b"llm-backend owner\x00" + key.encode()).hexdigest()[:16]


def static_key(entry: str, setting: str = "LLM_BACKEND_API_KEYS", position: int = 0, admin: bool = False) -> tuple[str, Principal]:
    """(the key, its principal) of one entry of a key setting: ``name=key`` or ``key``."""
    name, named, key = entry.partition("=")
    if not named:
        return entry, Principal(derived_owner(entry), admin)
    where = f"{setting}, entry {position + 1}"
    if not key.strip("="):
        raise KeyEntryError(f"{where}: no key after its name (a key containing '=' must be named: name=key)")
    if not OWNER_NAME.fullmatch(name) or name.startswith(RESERVED_PREFIXES) or name == ANONYMOUS:
        raise KeyEntryError(
            f"{where}: a key's name (before '=') is 1-64 letters, digits, '.', '_', '@' or '-', and does not "
            f"start with {', '.join(RESERVED_PREFIXES)} or read {ANONYMOUS!r}"
        )
    return key, Principal(name, admin)


class Keyring:
    """The static keys from configuration. With none configured, everyone is let in."""

    def __init__(self, keys: Iterable[str], admin_keys: Iterable[str] = ()) -> None:
        self._keys: list[tuple[bytes, Principal]] = []
        # Each key's owner before named keys: its position in its setting.
        self._legacy: dict[str, str] = {}
        owners: dict[bytes, str] = {}
        settings = (("LLM_BACKEND_API_KEYS", "key", keys, False), ("LLM_BACKEND_ADMIN_KEYS", "admin", admin_keys, True))
        for setting, prefix, entries, admin in settings:
            for position, entry in enumerate(entries):
                key, principal = static_key(entry, setting, position, admin)
                known = digest(key)
                if owners.setdefault(known, principal.owner) != principal.owner:
                    raise KeyEntryError(f"{setting}, entry {position + 1}: a key listed before under another owner")
                self._keys.append((known, principal))
                self._legacy[f"{prefix}-{position}"] = principal.owner

    @classmethod
    def of(cls, settings) -> "Keyring":
        """The static keys of ``settings`` (``api_keys``, ``admin_keys``)."""
        return cls(settings.api_keys, settings.admin_keys)

    def owners(self) -> dict[str, bool]:
        """Every static key's owner (its project), and whether an admin key is among its keys."""
        found: dict[str, bool] = {}
        for _, principal in self._keys:
            found[principal.owner] = found.get(principal.owner, False) or principal.admin
        return found

    def legacy_owners(self) -> dict[str, str]:
        """Positional owners (``key-0``, ``admin-0``, ...) -> the owners of the same keys now."""
        return dict(self._legacy)

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def authenticate(self, authorization: str | None) -> Principal:
        if not self.enabled:
            return Principal(ANONYMOUS, admin=True)
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise errors.missing_key()
        presented = digest(token)
        match = None
        # Compare against every key, without an early exit, so timing says nothing; a key
        # listed as both kinds counts as the more powerful one.
        for known, principal in self._keys:
            if hmac.compare_digest(presented, known) and (match is None or principal.admin):
                match = principal
        if match is None:
            raise errors.invalid_key()
        return match

    def authenticate_admin(self, authorization: str | None) -> Principal:
        """401 without a valid key, 403 with a key that is not an admin key."""
        principal = self.authenticate(authorization)
        if not principal.admin:
            raise errors.not_admin()
        return principal

    def by_digest(self, presented: bytes) -> Principal | None:
        """The principal of the static key whose digest ``presented`` is, if it is still listed."""
        match = None
        for known, principal in self._keys:
            if hmac.compare_digest(presented, known) and (match is None or principal.admin):
                match = principal
        return match


@dataclass(frozen=True)
class ManagedKey:
    """A managed key as a request finds it: its id, its project (None: an admin key, the
    organisation's), and whether it is an admin key."""

    id: str
    project_id: str | None
    admin: bool = False

    def principal(self) -> Principal:
        return Principal(owner=self.project_id or self.id, admin=self.admin, key_id=self.id)


class ManagedKeys(Protocol):
    """Keys kept in the database (``storage.api_keys.ApiKeyStore``): only active ones, of
    active projects, are found."""

    async def authenticate(self, key: str) -> ManagedKey | None: ...

    async def authenticate_digest(self, digest_hex: str) -> ManagedKey | None: ...

    async def authenticate_id(self, key_id: str) -> ManagedKey | None: ...

    async def any_created(self) -> bool: ...


class Projects(Protocol):
    """Which projects are archived (``storage.projects.ProjectStore``): a static key of one is refused."""

    async def archived(self, project_id: str) -> bool: ...


class Authenticator:
    """Static keys first (constant time), then managed keys (looked up by their digest).

    Keys are enforced as soon as either kind exists (a managed key revoked still counts: the
    service never opens again by revoking); with neither, everyone is let in.
    """

    def __init__(
        self, keyring: Keyring, managed: ManagedKeys | None = None, projects: Projects | None = None,
        refused_admin: Callable[[Principal | None, OpenAIError], None] | None = None,
    ) -> None:
        self.keyring = keyring
        self.managed = managed
        self.projects = projects
        # Told of every refused admin login (401/403 on an admin operation): the audit log.
        self.refused_admin = refused_admin

    async def _refused(self, principal: Principal) -> bool:
        """Whether a static key is refused by its project's state: archived, unless it is an
        admin key (the organisation's, see the module docstring)."""
        return not principal.admin and self.projects is not None and await self.projects.archived(principal.owner)

    async def _active(self, principal: Principal) -> Principal:
        """A static key's principal, unless its project was archived (401, as a revoked key)."""
        if await self._refused(principal):
            raise errors.invalid_key()
        return principal

    async def open(self) -> bool:
        """Whether no key of either kind exists: everyone is let in (as ``anonymous``)."""
        return not self.keyring.enabled and (self.managed is None or not await self.managed.any_created())

    async def authenticate(self, authorization: str | None) -> Principal:
        if self.managed is None or await self.open():
            principal = self.keyring.authenticate(authorization)
            return principal if principal.owner == ANONYMOUS else await self._active(principal)
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise errors.missing_key()
        if self.keyring.enabled:
            try:
                principal = self.keyring.authenticate(authorization)
            except OpenAIError:
                pass
            else:
                return await self._active(principal)
        found = await self.managed.authenticate(token)
        if found is None:
            raise errors.invalid_key()
        return found.principal()

    async def admitted(self, principal: Principal) -> Principal:
        """``principal``, counted by the rate limits (``LimitedAuthenticator``; here, none)."""
        return principal

    async def by_digest(self, presented: bytes) -> Principal | None:
        """Who the key whose digest ``presented`` is belongs to, if it is still valid (an
        ephemeral client secret is checked so: its key revoked, it stops working too)."""
        if await self.open():
            return Principal(ANONYMOUS, admin=True)
        found = self.keyring.by_digest(presented)
        if found is not None:
            return None if await self._refused(found) else found
        if self.managed is not None:
            managed = await self.managed.authenticate_digest(presented.hex())
            return managed.principal() if managed is not None else None
        return None

    async def holder(self, owner: str, creator: str | None) -> Principal | None:
        """Who work kept for later (a batch's lines) runs as: the key that made it, named as
        ``Principal.key`` names it (a managed key's id, a static key's owner, ``anonymous``),
        if a request of that key would be let in now - None once it was revoked, deleted or
        expired, dropped from the settings, or its project archived (the same rules as
        ``authenticate``). ``creator`` None (made before creators were kept): ``owner``'s
        project alone is checked."""
        if creator is None:
            archived = self.projects is not None and await self.projects.archived(owner)
            return None if archived else Principal(owner)
        if creator == ANONYMOUS:  # made while the service was keyless: good while it is
            return Principal(ANONYMOUS, admin=True) if await self.open() else None
        static = self.keyring.owners()  # a static key's owner is never a managed key's id (RESERVED_PREFIXES)
        if creator in static:
            principal = Principal(creator, static[creator])
            return None if await self._refused(principal) else principal
        found = await self.managed.authenticate_id(creator) if self.managed is not None else None
        return found.principal() if found is not None else None

    async def authenticate_admin(self, authorization: str | None) -> Principal:
        """401 without a valid key, 403 with a key that is not an admin key."""
        principal = None
        try:
            principal = await self.authenticate(authorization)
            if not principal.admin:
                raise errors.not_admin()
        except OpenAIError as error:
            if self.refused_admin is not None and error.status in (401, 403):
                self.refused_admin(principal, error)
            raise
        return principal
