"""What a prompt can start from instead of computing it: KV that a sequence holds, or that
was saved to host memory, for the same beginning (issue #34).

A KV cell depends only on the tokens up to it, and a copied or restored cell is the same
bytes. But llama.cpp's CPU kernels round differently by the shape of a chunk: flash
attention over 64 query rows or more takes one kernel, over 2 to 63 another, and one row
(decoding) a third; within each kind the rows do not affect each other (measured on
SmolLM2: a logit moved by 0.5, and a greedy answer changed, when the last 20 prompt tokens
came in a chunk of their own; any split into chunks of >= 64 gave the same bits, and any
split of a short chunk into pieces of >= 2). So a chat prompt is computed in two canonical
parts, everything before its last message, then the last message (the new question, a
tool's output), each in chunks of at least ``BLOCK`` (64) rows, or in one chunk when the
part is shorter; and a prefix is reused only so far that every position is computed in a
chunk of the kind this canonical computation gives it (``exact``). Users who send the same
system prompt with their own question share the whole first part, and reuse changes no
answer (tests/engine/test_prefixes.py). A conversation that continues after its own answer
reuses the answer's KV as it was decoded, one row at a time: exactness is lost there
whatever is done, so it is reused whole.

Exactness has a price where a client resends a conversation in its own words: a turn whose
first part ends in what the last prompt computed as its last message (a short chunk) must
compute at least a block of it again. A coding agent's later turns pay that each time (~0.6 s
at 9k tokens of context on 2 cores: a Codex session, `make bench`). So does a client resending
the answer verbatim when its text tokenizes otherwise than it was decoded from the first token
on (decoded "Av", "ar"; its text "A", "var"): that is no longer the conversation continued, and
where the earlier turns were computed in short chunks little or none of them is reused (SmolLM2,
sampled short chats: 2 third turns in 80 reused 0-25 of ~100 tokens, against 72-85 usually).
A model's ``exact_reuse: false`` reuses every cached token and chunks a prompt only by room, so
a later turn computes its new tokens alone; a greedy answer may then differ in its last bits
from the one computed from nothing, as in llama.cpp's server and vLLM.

Reuse never crosses tenants (a prefix served from cache is seconds faster: a timing side
channel). KV computed for one tenant is usable by another only up to the leading tokens that
both requests declare shared: a system prompt the operator configured as shared (a
persona's, or one of a model's ``shared_prefixes``), which is no secret of either: its own
text as the template renders it alone, never the tools or switches a template writes into
the same block (submission.py; issue #56).
"""

from __future__ import annotations

import ctypes
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import llama_cpp

# Flash attention's tiled kernel takes 64 query rows or more: chunk boundaries on multiples
# of it keep every prompt position in the same kind of chunk (see the docstring).
BLOCK = 64


def common_prefix(a: Sequence, b: Sequence, limit: int) -> int:
    """How many leading tokens (or characters: prompt_tokens.py) ``a`` and ``b`` share, at
    most ``limit``. Slices compare in C: a binary search over them is ~50x faster than a
    Python loop over 2000 tokens, and an admission compares the prompt with every sequence
    and every saved prefix."""
    low, high = 0, min(len(a), len(b), limit)
    if high > 0 and a[:high] == b[:high]:
        return high
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


# The kinds of chunk a prompt position can be computed in, and the fewest rows of each.
LONG, SHORT, ONE = 2, 1, 0
MIN_ROWS = {LONG: BLOCK, SHORT: 2, ONE: 1}


def _kind(rows: int) -> int:
    return LONG if rows >= BLOCK else SHORT if rows >= 2 else ONE


def _parts(split: int, total: int) -> list[tuple[int, int]]:
    """(end, kind) of each canonical part of a prompt of ``total`` tokens split at ``split``."""
    return [(end, _kind(end - start)) for start, end in ((0, split), (split, total)) if end > start]


def _agreeing(mine: list[tuple[int, int]], theirs: list[tuple[int, int]]) -> int:
    """How far two prompts' canonical computations give each position the same kind."""
    at, i, j = 0, 0, 0
    while i < len(mine) and j < len(theirs) and mine[i][1] == theirs[j][1]:
        at = min(mine[i][0], theirs[j][0])
        i += mine[i][0] == at
        j += theirs[j][0] == at
    return at


def exact(length: int, source: Holding, split: int, wanted: int) -> int:
    """How much of a common beginning of ``length`` tokens, taken from ``source``, a prompt
    of ``wanted`` tokens split at ``split`` may reuse so that each of its positions is
    computed in a chunk of the kind its canonical computation gives it (see the module's
    docstring): where both computations agree, leaving the rest of a part enough rows."""
    if length > source.prompt_len:
        return length  # into an answer decoded row by row: inexact whatever is done
    mine = _parts(split, wanted)
    length = min(length, _agreeing(mine, _parts(source.split, source.prompt_len)))
    start = 0
    for end, kind in mine:
        if length < end:
            return length if end - length >= MIN_ROWS[kind] else max(start, end - MIN_ROWS[kind])
        start = end
    return length


@dataclass
class Holding:
    """What a sequence's KV holds (or a saved copy of it), and whose it is."""

    tokens: list[int] = field(default_factory=list)
    tenant: str = ""
    shared: int = 0  # leading tokens any tenant may reuse (a shared system prompt)
    prompt_len: int = 0  # the last prompt served from it: a conversation continues there
    split: int = 0  # where that prompt's second canonical part (its last message) began

    def usable(self, prompt: list[int], tenant: str, shared: int, limit: int, split: int, canonical: bool = True) -> int:
        """How many of ``prompt``'s tokens (at most ``limit``) a request of ``tenant``, its
        first part ending at ``split``, may take from this KV: the common beginning if it is
        the same tenant's, else only what both declare shared; as far as ``exact`` allows
        when the request is computed in ``canonical`` parts (the model's ``exact_reuse``)."""
        if not self.tokens:
            return 0
        if tenant != self.tenant:
            limit = min(limit, shared, self.shared)
        common = common_prefix(self.tokens, prompt, limit)
        return exact(common, self, split, len(prompt)) if canonical else common

    def copy(self, length: int | None = None) -> Holding:
        tokens = self.tokens if length is None else self.tokens[:length]
        return Holding(list(tokens), self.tenant, min(self.shared, len(tokens)), self.prompt_len, self.split)


@dataclass(eq=False)
class Saved:
    holding: Holding
    state: ctypes.Array  # llama.cpp's serialized sequence state: its cells' K and V
    size: int


class HostCache:
    """Sequences' KV saved to host memory before their cells are reused, within ``budget``
    bytes (llama.cpp's per-sequence state save/restore: ~14 MB and ~8 ms for 600 tokens of
    SmolLM2-135M, against 2 s to compute them).

    Shared fairly by tenants (issue #39: one tenant's long prompts flushed another's saved
    prefixes): to make room, the tenant holding the most bytes (counting what is being
    saved) loses its least recently used prefix. So a tenant alone may use the whole budget,
    and a tenant holding no more than an equal share never loses a prefix to another one."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.entries: OrderedDict[int, Saved] = OrderedDict()  # least recently used first
        self.used = 0
        self.held: dict[str, int] = {}  # bytes saved per tenant
        self._keys = 0
        self.restored = 0  # prefixes restored since the worker started

    def best(self, prompt: list[int], tenant: str, shared: int, limit: int, split: int, canonical: bool = True) -> tuple[int | None, int]:
        """The saved prefix giving ``prompt`` the most tokens, and how many."""
        best, length = None, 0
        for key, saved in self.entries.items():
            usable = saved.holding.usable(prompt, tenant, shared, limit, split, canonical)
            if usable > length:
                best, length = key, usable
        return best, length

    def save(self, ctx: llama_cpp.llama_context_p, seq: int, holding: Holding) -> None:
        """Keep what ``seq`` holds, unless a saved prefix of the same tenant already covers it;
        saved prefixes it covers go, and so do those it continues: holding all their last
        prompt, it leaves them only their answer as decoded, which the next turn's prompt does
        not repeat token for token (it is re-tokenized from the text), and kept they filled
        the budget until a waiting conversation's prefix went (issue #41: a later turn found
        1 % of its prompt cached)."""
        tokens = holding.tokens
        for key, saved in list(self.entries.items()):
            other = saved.holding
            if other.tenant != holding.tenant:
                continue
            common = common_prefix(other.tokens, tokens, len(tokens))
            if common == len(tokens):
                self.entries.move_to_end(key)
                return
            if common == len(other.tokens) or 0 < other.prompt_len <= common:
                self._drop(key)
        size = llama_cpp.llama_state_seq_get_size(ctx, seq)
        if not 0 < size <= self.budget or not self._room(holding.tenant, size):
            return
        state = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(ctx, state, size, seq)
        if written != size:
            return
        self._keys += 1
        self.entries[self._keys] = Saved(holding.copy(), state, size)
        self.used += size
        self.held[holding.tenant] = self.held.get(holding.tenant, 0) + size

    def _room(self, tenant: str, size: int) -> bool:
        """Make room for ``size`` bytes of ``tenant``'s: the least recently used prefix of
        the tenant holding the most goes (on a tie, the saver's own), until it fits; False
        when only the saver could give way and holds nothing more to give: the others'
        stay, and this one is not saved."""
        while self.used + size > self.budget:
            holding = {**self.held, tenant: self.held.get(tenant, 0) + size}
            fullest = max(holding, key=lambda other: (holding[other], other == tenant))
            key = next((key for key, saved in self.entries.items() if saved.holding.tenant == fullest), None)
            if key is None:
                return False
            self._drop(key)
        return True

    def restore(self, ctx: llama_cpp.llama_context_p, key: int, seq: int) -> Holding | None:
        """Put saved prefix ``key`` into ``seq`` (whatever it held is gone); what it holds now."""
        saved = self.entries[key]
        if llama_cpp.llama_state_seq_set_data(ctx, saved.state, saved.size, seq) != saved.size:
            return None
        # Held by a sequence now, and saved again (longer) when that one is reused: of all
        # the entries, the one to lose first.
        self.entries.move_to_end(key, last=False)
        self.restored += 1
        return saved.holding.copy()

    def clear(self) -> None:
        self.entries.clear()
        self.used = 0
        self.held.clear()

    def _drop(self, key: int) -> None:
        saved = self.entries.pop(key)
        self.used -= saved.size
        tenant = saved.holding.tenant
        self.held[tenant] -= saved.size
        if not self.held[tenant]:
            del self.held[tenant]

    def stats(self) -> dict[str, int]:
        return {"host_cache_bytes": self.used, "host_cache_entries": len(self.entries), "host_cache_restores": self.restored}
