"""A reasoning model's reasoning as the Responses API shapes it: ``reasoning`` output items,
their ``encrypted_content``, and reasoning items sent back in ``input``.

The chat answer's ``reasoning_content`` (backends/llama/reasoning/, or an upstream's) is one
``reasoning`` item before the message or calls it led to: its text as a ``reasoning_text``
content part (what open-weight models' servers give, vLLM's and llama.cpp's), and as the
``summary_text`` when the request asks for a summary (``reasoning.summary``; Codex sends
``auto``): a local model writes no summary of its own, so the summary is the reasoning.

``encrypted_content`` (``include: ["reasoning.encrypted_content"]``, what ``store: false``
clients such as Codex send back each turn) is the text sealed with AES-GCM under a key
derived from the server's ``realtime_secret_key`` (auth/client_secrets.py's pattern, a context of
its own), a fresh nonce each time, bound to the project that asked (the tenant is the
cipher's associated data: another project's sealed reasoning does not open, issue #56):
opaque to the client, readable by every replica that shares the key. Sent back, it is opened and reaches the template (as the family reads it:
Qwen3's ``reasoning_content``, gpt-oss's analysis, dropped by DeepSeek's); one this server
cannot open (another key, a process with a random key that restarted) is read as the
item's plain text if it has some, else left out: the templates drop old reasoning anyway,
and a turn should not fail for it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable

from ...backends.base import tenant
from ...json.types import Json
from .items import new_id


INCLUDE = "reasoning.encrypted_content"
CONTEXT = b"llm-backend reasoning encrypted_content v1"
NONCE_BYTES = 12


class ReasoningSeal:
    """Reasoning text <-> ``encrypted_content`` (see the module docstring)."""

    def __init__(self, key: bytes | None = None) -> None:
        self.key = hmac.new(key or secrets.token_bytes(32), CONTEXT, hashlib.sha256).digest()

    def seal(self, text: str) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return base64.b64encode(nonce + self._cipher().encrypt(nonce, text.encode(), _bound())).decode()

    def open(self, token: str) -> str | None:
        from cryptography.exceptions import InvalidTag

        try:
            sealed = base64.b64decode(token, validate=True)
            if len(sealed) <= NONCE_BYTES:
                return None
            return self._cipher().decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], _bound()).decode()
        except (ValueError, InvalidTag):  # not base64, not UTF-8, forged, not ours
            return None

    def _cipher(self):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        return AESGCM(self.key)


def _bound() -> bytes:
    """The associated data: the context and the project of the request being served."""
    return CONTEXT + b"\0" + tenant.get().encode()


def sealing(body: Json, seal: ReasoningSeal | None) -> Callable[[str], str] | None:
    """How this request's reasoning items get their ``encrypted_content``, if it asks."""
    return seal.seal if seal is not None and INCLUDE in (body.get("include") or []) else None


def summarized(response: Json) -> bool:
    return bool((response.get("reasoning") or {}).get("summary"))


def output_item(text: str, status: str, response: Json, seal: Callable[[str], str] | None, item_id: str | None = None) -> Json:
    item: Json = {
        "id": item_id or new_id("rs"),
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": text}] if summarized(response) else [],
        "content": [{"type": "reasoning_text", "text": text}],
        "status": status,
    }
    if seal is not None:
        item["encrypted_content"] = seal(text)
    return item


def text_of(item: Json, seal: ReasoningSeal | None) -> str:
    """What a reasoning item sent back says: its sealed text, else its own text."""
    encrypted = item.get("encrypted_content")
    if isinstance(encrypted, str) and seal is not None:
        opened = seal.open(encrypted)
        if opened is not None:
            return opened
    parts = item.get("content") or item.get("summary") or []
    return "".join(part.get("text") or "" for part in parts if isinstance(part, dict))


def readable(items: list[Json], seal: ReasoningSeal | None) -> list[Json]:
    """``items`` with each reasoning item's text made plain (``reasoning_text``) for the chat
    request; the stored items are left as sent."""
    return [
        {"type": "reasoning", "id": item.get("id"), "content": [{"type": "reasoning_text", "text": text_of(item, seal)}]}
        if item.get("type") == "reasoning" else item
        for item in items
    ]
