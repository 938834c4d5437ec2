"""A tenant's own prompt cache on an upstream (``isolate_prompt_cache``, issue #56 item 7).

An upstream caches prompts per account, and every tenant of this service is one account
there (the service's key): without more, one tenant's prompt is another's cache hit, seen
in ``cached_tokens`` and in the time to the first token - the side channel that OpenAI and
Anthropic close between their organisations. Where the upstream keys its cache on a
request field, each chat completion and completion carries one of the tenant's own:

- ``cache_salt`` (vLLM): hashed into the first block of its prefix cache, so prompts salted
  differently share no block. A boundary.
- ``prompt_cache_key`` (OpenAI): what OpenAI's cache routing combines with the prompt's
  prefix. Another tenant's hit becomes unlikely; OpenAI does not document it as a boundary.

The value is 256 bits of an HMAC-SHA-256 of the tenant and of the field's value the client
sent (a client's own split of its traffic stays a split, within its tenant), keyed by the
upstream's key when it has one (vLLM asks for a salt third parties cannot predict: only a
holder of the key, who may use the upstream anyway, can compute a tenant's), else by a
fixed label; base64url, 43 characters (vLLM's advice; within OpenAI's 64). Never the
tenant's name, and the same on every replica and after a restart, so that a tenant's own
cache outlives them. A client cannot choose another tenant's value: whatever it sends is
mixed into its own.

Opt-in, per upstream: OpenAI's API refuses a ``cache_salt`` it does not know, and other
servers may refuse either. An Anthropic upstream takes none (its body passes as the
client's bytes, and its API has no such field: settings/upstream.py refuses the setting there).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from ...json.types import Json
from ...settings import UpstreamConfig
from ..base import tenant

LABEL = b"llm-backend upstream prompt cache"


class TenantCache:
    """Sets ``field`` of a generation request to the calling tenant's own value."""

    def __init__(self, field: str, key: str | None) -> None:
        self.field = field
        self._key = key.encode() if key else LABEL

    @classmethod
    def of(cls, config: UpstreamConfig) -> TenantCache | None:
        """The upstream's, or None when its prompt cache is left shared (the default)."""
        return cls(config.isolate_prompt_cache, config.key) if config.isolate_prompt_cache else None

    def value(self, own: object) -> str:
        """The tenant's value; ``own``: what the client sent in the field (kept apart when a string)."""
        named = json.dumps([tenant.get(), own if isinstance(own, str) else None]).encode()
        digest = hmac.new(self._key, named, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def request(self, request: Json) -> Json:
        return {**request, self.field: self.value(request.get(self.field))}
