"""A chat's route key: what decides which engine holds its prefix, so that a conversation's
next turn, or a new chat with the same first message, goes to the engine whose KV cache holds
its beginning (issue #34; SGLang's cache-aware router does this with a radix tree of the text).
Used by a model's engine workers (``llama/local_model.py``) and by a pool of deployments
(``pool.py``), through the hash ring (``ring.py``).

The key is computed from the request alone, so every gateway replica computes the same one
and sends the conversation to the same engine (issue #51: routes remembered per process made
replicas disagree). It is the tenant and the ``prompt_cache_key`` when the client sends one
(OpenAI's clients send it for exactly this: Codex CLI, the Agents SDK); else the tenant and
the chat's first message (the system prompt, or the first user message), which every later
turn of a conversation repeats, and which chats sharing a system prompt share: KubeAI's
PrefixHash hashes the first characters of the prompt likewise.

An engine keeps a tenant's prefixes for that tenant alone (``llama/engine/prefixes.py``), so
the key is per tenant too: another tenant's chat with the same messages is routed apart.
"""

from __future__ import annotations

import hashlib
import json

from ..json.types import Json



def route_key(request: Json | None, tenant: str) -> bytes:
    """The route key of a chat request (empty for a request that is not a chat)."""
    if not request:
        return b""
    cache_key = request.get("prompt_cache_key")
    if isinstance(cache_key, str) and cache_key:
        part = ["prompt_cache_key", cache_key]
    else:
        messages = request.get("messages")
        if not isinstance(messages, list) or not messages:
            return b""
        part = ["first_message", messages[0]]
    text = json.dumps([tenant, *part], sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=16).digest()
