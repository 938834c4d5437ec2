"""The audit log's key: what seals its entries into a chain (``storage/audit_chain.py``).

``audit_log_key`` when set (replicas sharing one database must share it); else a random key
made once and kept in the data directory (``audit-log.key``, readable by its owner only), so
that a single machine's service and its command line (``llm-backend audit verify``) agree
without configuration. Whoever can read the key can forge a chain: it is kept out of the
database on purpose, and never logged or shown. The key used is derived from the secret for
this one purpose (HMAC), as ``auth/client_secrets.py`` derives its own.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..settings import Settings

CONTEXT = b"llm-backend audit log chain v1"
FILE_NAME = "audit-log.key"


def of(settings: "Settings") -> bytes:
    configured = settings.audit_log_key
    secret = configured.get_secret_value().encode() if configured else kept(settings.data_dir / FILE_NAME)
    return hmac.new(secret, CONTEXT, hashlib.sha256).digest()


def kept(path: Path) -> bytes:
    """The key kept at ``path``, made there first if there is none. Processes starting
    together agree: the key is written whole to a file of its own, then linked into place
    (which fails for all but the first)."""
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{FILE_NAME}.{secrets.token_hex(8)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_hex(32) + "\n")
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
    finally:
        draft.unlink()
    return path.read_bytes().strip()
