"""Ephemeral client secrets of the Realtime API (``POST /v1/realtime/client_secrets``): what
a server hands a browser so that it can open ``/v1/realtime`` without the real key.

A secret is a sealed token, not a stored row: ``ek_`` + its claims (the digest of the key
that made it - never the key -, its expiry, the session it was made for, an id of its own)
encrypted and authenticated with AES-GCM under a key derived from ``realtime_secret_key``,
a fresh nonce each time. The browser it is given to holds opaque bytes: nothing in them is
a function of the API key alone, so no guess of the key can be tested offline against them
(issue #39: the digest used to travel in clear, and a fast unsalted hash of a short key
gives the key away). Every replica that shares ``realtime_secret_key`` reads the secrets of
the others, as before.

It is good only for ``/v1/realtime``, only until it expires, and only while the key that
made it is still valid (checked at each use: revoke the key and its secrets stop working),
and it acts as that key's tenant.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

PREFIX = "ek_"
NONCE_BYTES = 12
CONTEXT = b"llm-backend realtime client secret v2"  # what the key derived here is for


@dataclass(frozen=True)
class Claims:
    creator: bytes  # the sha256 digest of the key that made the secret
    expires_at: int
    session: dict[str, Any]
    secret_id: str  # the secret's own random id: its sessions are counted by it


class ClientSecrets:
    def __init__(self, key: bytes | None = None) -> None:
        # A key of its own, derived from the setting: the setting may be any string.
        self.key = hmac.new(key or secrets.token_bytes(32), CONTEXT, hashlib.sha256).digest()

    def issue(self, creator: bytes, expires_at: int, session: dict[str, Any]) -> str:
        claims = {"c": creator.hex(), "e": expires_at, "s": session, "i": secrets.token_hex(12)}
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._cipher().encrypt(nonce, json.dumps(claims, separators=(",", ":")).encode(), CONTEXT)
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def read(self, token: str) -> Claims | None:
        """The claims of a genuine, unexpired secret; None for anything else (whatever its
        characters: a header is the client's to fill)."""
        from cryptography.exceptions import InvalidTag

        if not token.startswith(PREFIX):
            return None
        body = token[len(PREFIX) :]
        try:
            sealed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            if len(sealed) <= NONCE_BYTES:
                return None
            claims = json.loads(self._cipher().decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], CONTEXT))
            found = Claims(bytes.fromhex(claims["c"]), int(claims["e"]), dict(claims["s"]), str(claims["i"]))
        except (ValueError, KeyError, TypeError, InvalidTag):  # not base64, not ASCII, forged, not ours
            return None
        return found if found.expires_at > time.time() else None

    def _cipher(self):
        # Loaded on first use: most services never make a secret.
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        return AESGCM(self.key)
