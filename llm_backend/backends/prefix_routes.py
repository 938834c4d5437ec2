"""Which engine holds a chat's beginning: the recent chats' message prefixes, per tenant, and
where each was served, so that a conversation's next turn, or a new chat with the same
system prompt, goes to the engine whose KV cache holds it (issue #34; SGLang's cache-aware
router does this with a radix tree of the text). Used by a model's engine workers
(``llama/local_model.py``) and by a pool of deployments (``pool.py``).

An engine keeps a tenant's prefixes for that tenant alone (``llama/engine/prefixes.py``),
so the routes are per tenant too: another tenant's chat with the same messages is routed as
if it were new. And one tenant cannot flush another's routes (issue #39): when the routes are
full, the tenant remembering the most loses its least recently used one, so each tenant keeps
at least its fair share of ``ROUTE_ENTRIES``.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from .base import Json

Target = TypeVar("Target")

# Prefixes remembered (a hash and a target each: ~200 bytes).
ROUTE_ENTRIES = 8192
# A request's prefixes remembered: the first messages carry the shared beginnings (system
# prompt, tools, the conversation so far); a longer chat is remembered by its first ones.
MAX_PREFIXES = 64
# A request may go to the engine holding its beginning with this many more requests in
# flight than the least-loaded one: computing a long prefix again costs more than waiting.
SLACK = 2


def prefix_hashes(request: Json, tenant: str) -> list[bytes]:
    """The hash of each prefix of the chat's messages (shortest first), under its model and
    tenant."""
    messages = request.get("messages")
    if not isinstance(messages, list):
        return []
    digest = hashlib.blake2b(json.dumps([request.get("model"), tenant]).encode(), digest_size=16)
    hashes = []
    for message in messages[:MAX_PREFIXES]:
        digest.update(json.dumps(message, sort_keys=True, separators=(",", ":")).encode())
        hashes.append(digest.copy().digest())
    return hashes


class PrefixRoutes(Generic[Target]):
    """Where each remembered prefix was served last; past ``entries``, the least recently
    used route of the tenant remembering the most goes first."""

    def __init__(self, entries: int = ROUTE_ENTRIES) -> None:
        self.entries = entries
        self._tenants: dict[bytes, str] = {}  # each route's tenant
        self._routes: dict[str, OrderedDict[bytes, Target]] = {}  # each tenant's, least recent first

    def __len__(self) -> int:
        return len(self._tenants)

    def holder(self, hashes: list[bytes], usable: Callable[[Target], bool]) -> Target | None:
        """The usable target that served the longest of these prefixes."""
        for digest in reversed(hashes):
            tenant = self._tenants.get(digest)
            target = None if tenant is None else self._routes[tenant].get(digest)
            if target is not None and usable(target):
                return target
        return None

    def pick(self, hashes: list[bytes], least: Target, load: Callable[[Target], float], usable: Callable[[Target], bool]) -> Target:
        """The holder of the longest prefix, unless it is busier than ``least`` by more than
        ``SLACK``; else ``least``."""
        holder = self.holder(hashes, usable)
        if holder is not None and load(holder) - load(least) <= SLACK:
            return holder
        return least

    def remember(self, hashes: list[bytes], target: Target, tenant: str = "") -> None:
        """``tenant``'s prefixes (``prefix_hashes``) were served by ``target``."""
        if not hashes:
            return
        routes = self._routes.setdefault(tenant, OrderedDict())
        for digest in hashes:
            routes[digest] = target
            routes.move_to_end(digest)
            self._tenants[digest] = tenant
        while len(self._tenants) > self.entries:
            fullest = max(self._routes, key=lambda other: len(self._routes[other]))
            digest, _ = self._routes[fullest].popitem(last=False)
            del self._tenants[digest]
            if not self._routes[fullest]:
                del self._routes[fullest]
