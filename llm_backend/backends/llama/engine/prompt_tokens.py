"""A long chat prompt's tokens, reusing those of a recent prompt of the same tenant for the
text both begin with (issue #49): an agent resends its whole conversation every turn (Codex:
40 KB, 9.5k tokens), and tokenizing it took ~9 ms twice a request (the prompt, and its first
part for the split: submission.py) here, more than the compute of a later turn on a GPU.

Exact by llama.cpp's own rule, not by a second tokenizer: with special tokens parsed, it cuts
the text at every special token's text (``<|im_start|>``...) and a BPE vocabulary tokenizes
each piece between them by itself. So where a recent prompt and this one share their text
up to past a special token, the tokens before that special token are the same, and only the
text from it on is tokenized. Used for BPE vocabularies only (SentencePiece adds a space
after specials, and the others differ again): any other is tokenized whole. Each use is
also checked, one in ``CHECK_EVERY``, against tokenizing the whole text; a difference turns
the reuse off for the worker's life and is logged.

Per tenant (a prompt tokenized faster because another tenant sent the same text would be a
timing channel, as for the KV prefix: prefixes.py), within ``KEEP_BYTES`` of the worker's
memory: a tenant's latest four prompts, the least recently seen tenant's going first.

A prompt whose client text held a special token's text (``Defused``: special_texts.py) is
tokenized by its own rule, neither reused nor kept: its tokens are not those of its text."""

from __future__ import annotations

import sys
from array import array
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import llama_cpp

from .prefixes import common_prefix
from .prompts import Tokenizer
from .special_texts import Defused

# Shorter texts are tokenized whole: under a millisecond.
MIN_CHARS = 4096
# Recent prompts kept, all tenants together, in bytes (an agent's 9.5k-token prompt: ~120 KB
# of text, tokens and cuts); one larger than an eighth of it (a prompt no window takes) is not.
KEEP_BYTES = 32 << 20
# One reuse in this many is checked against tokenizing the whole text.
CHECK_EVERY = 64
SPECIAL = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED | llama_cpp.LLAMA_TOKEN_ATTR_UNKNOWN


@dataclass
class Seen:
    """A prompt tokenized: its text, its tokens, and where its special tokens start in both."""

    text: str
    tokens: array
    cuts: list[tuple[int, int]]  # (token index, character offset) of each special token

    @property
    def size(self) -> int:
        """Its bytes in memory, about: the text, the tokens, a cut's tuple of two ints."""
        return sys.getsizeof(self.text) + 4 * len(self.tokens) + 120 * len(self.cuts)


class PromptTokens:
    """``tokens(text, add_bos, tenant)``: as ``Tokenizer.tokenize`` gives them (special tokens
    parsed; a ``Defused`` prompt's client text as text), from a recent prompt's where the
    texts agree (the module's docstring)."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        vocab = tokenizer.vocab
        self.on = llama_cpp.llama_vocab_type(vocab) == llama_cpp.LLAMA_VOCAB_TYPE_BPE
        self.specials: dict[int, str] = {}
        if self.on:
            for token in range(tokenizer.n_vocab):
                if llama_cpp.llama_vocab_get_attr(vocab, token) & SPECIAL:
                    text = tokenizer.special_text(token)
                    if text:
                        self.specials[token] = text
        self.longest = max((len(text) for text in self.specials.values()), default=0)
        self.seen: OrderedDict[tuple[str, bool], list[Seen]] = OrderedDict()
        self.bytes = 0  # what ``seen`` holds
        self.count = 0
        self.reused = 0  # tokens taken from a recent prompt, since the worker started

    def tokens(self, text: str, add_bos: bool, tenant: str) -> list[int]:
        if isinstance(text, Defused):
            return self.tokenizer.specials.tokens(text, add_bos)
        if not self.on or len(text) < MIN_CHARS:
            return self.tokenizer.tokenize(text, add_bos)
        key = (tenant, add_bos)
        tokens = self._from_seen(text, self.seen.get(key, ()))
        if tokens is not None:
            self.count += 1
            if (self.count - 1) % CHECK_EVERY == 0 and tokens != (whole := self.tokenizer.tokenize(text, add_bos)):
                print("prompt tokens: a reused tokenization differed from the whole one; reuse is off", file=sys.stderr)
                self.on = False
                tokens = whole
        else:
            tokens = self.tokenizer.tokenize(text, add_bos)
        self._keep(key, text, tokens, add_bos)
        return tokens

    def _from_seen(self, text: str, seen: Sequence[Seen]) -> list[int] | None:
        """The tokens of ``text`` from the recent prompt sharing the most of it, past a special
        token; None when none does."""
        best, shared = None, 0
        for other in seen:
            common = common_prefix(other.text, text, len(text))
            if common > shared:
                best, shared = other, common
        if best is None:
            return None
        # The last special token whose text, and as much again as the longest special's, lies
        # in the shared text: no special token can be read across the cut in either prompt.
        cut = None
        for index, offset in reversed(best.cuts):
            if offset + 2 * self.longest <= shared:
                cut = index, offset
                break
        if cut is None:
            return None
        index, offset = cut
        self.reused += index
        return best.tokens[:index].tolist() + self.tokenizer.tokenize(text[offset:], add_bos=False)

    def _keep(self, key: tuple[str, bool], text: str, tokens: list[int], add_bos: bool) -> None:
        if Seen(text, array("i"), []).size + 4 * len(tokens) > KEEP_BYTES // 8:
            return  # not read for its cuts either
        cuts, at = [], 0
        bos = llama_cpp.llama_vocab_bos(self.tokenizer.vocab)
        for index, token in enumerate(tokens):
            special = self.specials.get(token)
            if special is None or (index == 0 and add_bos and token == bos):
                continue  # the BOS the tokenizer added is not in the text
            offset = text.find(special, at)
            if offset < 0:
                break  # not from the text (an EOS added): the cuts before it stand
            cuts.append((index, offset))
            at = offset + len(special)
        kept = Seen(text, array("i", tokens), cuts)
        if kept.size > KEEP_BYTES // 8:
            return
        seen = self.seen.setdefault(key, [])
        self.seen.move_to_end(key)
        seen.insert(0, kept)
        self.bytes += kept.size
        if len(seen) > 4:  # a tenant's few latest: its sessions' next turns
            self.bytes -= seen.pop().size
        while self.bytes > KEEP_BYTES:  # the least recently seen tenant's oldest goes
            oldest = next(iter(self.seen))
            self.bytes -= self.seen[oldest].pop().size
            if not self.seen[oldest]:
                del self.seen[oldest]
