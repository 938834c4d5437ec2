"""A ``thinking`` block's ``signature``: how the service knows, when a client sends the block
back in a later turn, that it wrote that thinking, for that tenant (issue #56).

Anthropic's signature lets its API check that a thinking block comes back as its model wrote
it: one that does not verify is a 400 (``messages.1.content.0: Invalid `signature` in
`thinking` block``, the message its API answers and clients report). Here a signature was
the text sealed with the server's key, bound to no tenant and never checked: a block from
another project, or thinking the client wrote itself, went by as the model's own.

Now the signature is an HMAC-SHA256, under a key of its own derived from the server's
sealing key (``ReasoningSeal``'s, from ``realtime_secret_key``; a context apart, so it is
never a Responses ``encrypted_content`` nor one of those a signature), of the tenant (the
project, ``Principal.owner``) and the thinking text. A block sent back verifies only for
the project it was signed for, with its text unchanged; else the request is refused with
Anthropic's 400. A ``redacted_thinking`` block is refused likewise: this service redacts
no thinking, so no ``data`` is its own (Anthropic: ``Invalid `data` in `redacted_thinking`
block``). A block that verifies is still left out of the context (``request.py``).

The key is the server's: with ``realtime_secret_key`` unset it is random per process, and a
conversation's thinking blocks stop verifying after a restart or on another replica (set
the key: docs/MESSAGES.md). A model of an Anthropic upstream never comes here: its requests
are passed through as sent (``passthrough.py``), Anthropic's signatures untouched.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from llm_backend.json.types import Json

from ..errors import invalid_redacted_thinking, invalid_thinking_signature

CONTEXT = b"llm-backend messages thinking signature v1"


class ThinkingSignatures:
    """Signs and checks one tenant's thinking blocks (see the module docstring)."""

    def __init__(self, server_key: bytes, tenant: str) -> None:
        key = hmac.new(server_key, CONTEXT, hashlib.sha256).digest()
        self._mac = hmac.new(key, _encoded(tenant), hashlib.sha256)  # copied for each text

    def sign(self, thinking: str) -> str:
        return base64.b64encode(self._digest(thinking)).decode()

    def verifies(self, thinking: str, signature: str) -> bool:
        try:
            given = base64.b64decode(signature, validate=True)
        except ValueError:  # not base64 (binascii.Error), or not ASCII
            return False
        return hmac.compare_digest(given, self._digest(thinking))

    def check(self, body: Json) -> None:
        """Every thinking block of ``body``'s assistant turns signed here for this tenant,
        else Anthropic's 400 naming the first that is not."""
        for index, message in enumerate(body.get("messages") or ()):
            content = message.get("content")
            if message.get("role") != "assistant" or not isinstance(content, list):
                continue  # a user turn's thinking block is refused as misplaced (request.py)
            for number, block in enumerate(content):
                kind = block.get("type")
                if kind == "thinking" and not self.verifies(block["thinking"], block["signature"]):
                    raise invalid_thinking_signature(index, number)
                if kind == "redacted_thinking":
                    raise invalid_redacted_thinking(index, number)

    def _digest(self, thinking: str) -> bytes:
        mac = self._mac.copy()
        mac.update(thinking.encode("utf-8", "surrogatepass"))  # a client's text may hold a lone surrogate
        return mac.digest()


def _encoded(tenant: str) -> bytes:
    """The tenant, length first: no tenant and text ever read as another pair."""
    raw = tenant.encode("utf-8", "surrogatepass")
    return len(raw).to_bytes(4, "big") + raw
