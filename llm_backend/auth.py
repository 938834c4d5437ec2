"""Bearer API keys: who is calling, decided in one place.

Keys are kept only as sha256 digests and compared in constant time, so neither memory
dumps of the settings nor timing reveal them. Connexion calls us for every operation
whose spec declares a bearer security scheme (``http/security.py``), and the fast lane
asks the same ``Authenticator``.

Two kinds of keys: API keys (``api_keys``) call the OpenAI operations; admin keys
(``admin_keys``) call those and the admin operations, whose security scheme in
extensions.yaml carries ``x-admin: true``. With no key configured at all, everyone is let
in (the service then listens on loopback only, see ``Settings.check_bind``).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Protocol

from . import errors
from .errors import OpenAIError

ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Principal:
    """The caller a key belongs to; stored objects are owned by ``owner``."""

    owner: str
    admin: bool = False

    def token_info(self) -> dict:
        return {"sub": self.owner, "admin": self.admin}


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class Keyring:
    """The static keys from configuration. With none configured, everyone is let in."""

    def __init__(self, keys: list[str], admin_keys: list[str] = ()) -> None:
        self._keys = [(digest(key), Principal(f"key-{index}")) for index, key in enumerate(keys)]
        self._keys += [
            (digest(key), Principal(f"admin-{index}", admin=True)) for index, key in enumerate(admin_keys)
        ]

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


class ManagedKeys(Protocol):
    """Keys kept in the database (``storage.api_keys.ApiKeyStore``)."""

    async def authenticate(self, key: str) -> str | None: ...

    async def any_active(self) -> bool: ...


class Authenticator:
    """Static keys first (constant time), then managed keys (looked up by their digest).

    Keys are enforced as soon as either kind exists; with neither, everyone is let in.
    """

    def __init__(self, keyring: Keyring, managed: ManagedKeys | None = None) -> None:
        self.keyring = keyring
        self.managed = managed

    async def authenticate(self, authorization: str | None) -> Principal:
        if self.managed is None or (not self.keyring.enabled and not await self.managed.any_active()):
            return self.keyring.authenticate(authorization)
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise errors.missing_key()
        if self.keyring.enabled:
            try:
                return self.keyring.authenticate(authorization)
            except OpenAIError:
                pass
        key_id = await self.managed.authenticate(token)
        if key_id is None:
            raise errors.invalid_key()
        return Principal(owner=key_id)

    async def authenticate_admin(self, authorization: str | None) -> Principal:
        """401 without a valid key, 403 with a key that is not an admin key."""
        principal = await self.authenticate(authorization)
        if not principal.admin:
            raise errors.not_admin()
        return principal
