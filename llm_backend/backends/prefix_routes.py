"""Which engine holds a chat's beginning: the recent chats' message prefixes, per tenant, and
where each was served, so that a conversation's next turn, or a new chat with the same
system prompt, goes to the engine whose KV cache holds it (issue #34; SGLang's cache-aware
router does this with a radix tree of the text). Used by a model's engine workers
(``llama/local_model.py``) and by a pool of deployments (``pool.py``).

An engine keeps a tenant's prefixes for that tenant alone (``llama/engine/prefixes.py``),
so the routes are per tenant too: another tenant's chat with the same messages is routed as
if it were new.
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
    """Where each remembered prefix was served last, least recently used out first."""

    def __init__(self, entries: int = ROUTE_ENTRIES) -> None:
        self.entries = entries
        self._targets: OrderedDict[bytes, Target] = OrderedDict()

    def holder(self, hashes: list[bytes], usable: Callable[[Target], bool]) -> Target | None:
        """The usable target that served the longest of these prefixes."""
        for digest in reversed(hashes):
            target = self._targets.get(digest)
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

    def remember(self, hashes: list[bytes], target: Target) -> None:
        for digest in hashes:
            self._targets[digest] = target
            self._targets.move_to_end(digest)
        while len(self._targets) > self.entries:
            self._targets.popitem(last=False)
