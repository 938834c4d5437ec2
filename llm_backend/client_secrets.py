"""Ephemeral client secrets of the Realtime API (``POST /v1/realtime/client_secrets``): what
a server hands a browser so that it can open ``/v1/realtime`` without the real key.

A secret is a signed token, not a stored row: ``ek_`` + the claims (the digest of the key
that made it - never the key -, its expiry, the session it was made for) + an HMAC-SHA256
of them under ``realtime_secret_key``. It is good only for ``/v1/realtime``, only until it
expires, and only while the key that made it is still valid (checked at each use: revoke
the key and its secrets stop working), and it acts as that key's tenant.
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


@dataclass(frozen=True)
class Claims:
    creator: bytes  # the sha256 digest of the key that made the secret
    expires_at: int
    session: dict[str, Any]


class ClientSecrets:
    def __init__(self, key: bytes | None = None) -> None:
        self.key = key or secrets.token_bytes(32)

    def issue(self, creator: bytes, expires_at: int, session: dict[str, Any]) -> str:
        claims = json.dumps({"c": creator.hex(), "e": expires_at, "s": session}, separators=(",", ":")).encode()
        body = base64.urlsafe_b64encode(claims).decode().rstrip("=")
        return f"{PREFIX}{body}.{self._sign(body)}"

    def read(self, token: str) -> Claims | None:
        """The claims of a genuine, unexpired secret; None for anything else."""
        if not token.startswith(PREFIX) or token.count(".") != 1:
            return None
        body, signature = token[len(PREFIX) :].split(".")
        if not hmac.compare_digest(signature, self._sign(body)):
            return None
        try:
            claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            found = Claims(bytes.fromhex(claims["c"]), int(claims["e"]), dict(claims["s"]))
        except (ValueError, KeyError, TypeError):
            return None
        return found if found.expires_at > time.time() else None

    def _sign(self, body: str) -> str:
        mac = hmac.new(self.key, body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")
