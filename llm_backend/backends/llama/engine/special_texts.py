"""A client's text read as text (issue #56): only the chat template's own markup becomes the
model's control tokens.

Parsing special tokens, llama.cpp cuts a text at every control token's text (``<|im_start|>``,
``<start_of_turn>``...) wherever it stands, so that text inside a message, a tool result or a
tool's description became the token and could open a turn of its own: twelve ``<|im_start|>``
in a message cost 44 prompt tokens where twelve ``<|im_stat|>`` cost 104. OpenAI and
Anthropic read such text as text.

A request's strings (all the client sent: contents, calls and their arguments, decoded,
tools, the template's switches) are looked through at once for those texts, with one
Aho-Corasick automaton per model (``ahocorasick_rs``: Gemma 3 has 6,249 control tokens,
``<unusedN>``). For a Codex turn's 37 KB, 561 strings: 0.1 ms in all here, 0.03 of it the
automaton's pass (pyahocorasick's: 0.09), beside 1.5 ms for its render and reused tokens and
17-25 ms for tokens not reused. None found, the prompt is rendered and tokenized as before.
Found, every such text in the client's strings gets a sentinel, the noncharacter U+FDD0,
after its first character, so that it no longer reads as one; the rendered prompt is cut
where llama.cpp would cut it (``partition``: now at the template's markup only), and each
piece between is tokenized with special tokens read as text, the sentinels taken out: the
template's tokens around the client's text tokenized as plain text, token for token (a
prompt as long tokenizes in about the time it did: 24 ms against 22 for a Codex turn).
The strings are defused before the tool format and the reasoning family add their markup,
which stays theirs. A string the client sent is looked at by itself: text a template made by
joining two of them (none of the templates seen joins them without markup between) is not.

Templates may print a string as JSON (``tojson``) or as Python's ``repr``, which write the
sentinel as ``\\ufdd0``; that form is taken out too. A client's own U+FDD0, or its text
``\\ufdd0``, stays: in a defused request a U+FDD1 follows it, and the pair reads as the one.
A control token of one character (none in the vocabularies seen) cannot be broken this way.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Callable
from typing import Any

import llama_cpp
from ahocorasick_rs import AhoCorasick

# The tokens llama.cpp reads from their text only when special tokens are parsed (user-defined
# ones it reads always: they are the vocabulary's text, and stay so here).
PARSED = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_UNKNOWN
SENTINEL, KEEP = "\ufdd0", "\ufdd1"
# A sentinel as the rendered text holds it (raw, or as JSON and repr write it), with the mark
# that makes it the client's own.
SENTINELS = re.compile(r"(\ufdd0|\\ufdd0)(\ufdd1|\\ufdd1)?")
CLIENTS = re.compile(r"\ufdd0|\\ufdd0")
SPACES = " \t\n\v\f\r"  # C's isspace: what llama.cpp strips beside an LSTRIP/RSTRIP token


class Defused(str):
    """A rendered prompt whose client text holds sentinels: ``SpecialTexts.tokens`` reads it."""


class SpecialTexts:
    """The texts of one model's parsed special tokens: found and defused in a request's
    strings (``found``, ``defused``), and a defused prompt tokenized (``tokens``)."""

    def __init__(self, vocab: Any, n_vocab: int, tokenize: Callable[..., list[int]]) -> None:
        """``tokenize``: the model's ``Tokenizer.tokenize``."""
        self.vocab, self.tokenize = vocab, tokenize
        found: dict[str, tuple[int, int]] = {}
        for token in range(n_vocab):
            attr = llama_cpp.llama_vocab_get_attr(vocab, token)
            if attr & PARSED:
                # The token's own text: what llama.cpp looks for (its piece may differ: <unk>).
                text = llama_cpp.llama_vocab_get_text(vocab, token).decode("utf-8", errors="replace")
                if text:
                    found.setdefault(text, (token, attr))
        self.texts = list(found)
        self.token_attrs = [found[text] for text in self.texts]
        self.sizes = [len(text.encode()) for text in self.texts]
        self.automaton = AhoCorasick(self.texts) if self.texts else None

    def found(self, messages: list[dict[str, Any]], *values: Any) -> bool:
        """Whether any string of the request (``values``: its tools, tool choice, switches)
        holds a special token's text."""
        if self.automaton is None:
            return False
        strings: list[str] = []
        _strings([messages, values], strings)
        strings += (_arguments(call) for message in messages for call in message.get("tool_calls") or ())
        # One pass over them all: a NUL is in no special token's text.
        return bool(self.automaton.find_matches_as_indexes("\x00".join(strings)))

    def defused(self, value: Any) -> Any:
        """``value`` (a message, a list of tools...) with each of its strings defused; a
        call's arguments as the template will read them, their JSON escapes decoded."""
        if isinstance(value, str):
            return self._text(value)
        if isinstance(value, (list, tuple)):
            return [self.defused(item) for item in value]
        if not isinstance(value, dict):
            return value
        defused = {self.defused(key): self.defused(item) for key, item in value.items()}
        for call, original in zip(defused.get("tool_calls") or (), value.get("tool_calls") or ()):
            decoded = _arguments(original)
            if decoded and (text := self._text(decoded)) != decoded:
                call["function"]["arguments"] = text  # what its escapes hid, defused
        return defused

    def _text(self, text: str) -> str:
        if SENTINEL in text or "\\ufdd0" in text:  # the client's own: kept
            text = CLIENTS.sub(lambda match: match.group() + KEEP, text)
        assert self.automaton is not None
        starts = sorted({start for _, start, _ in self.automaton.find_matches_as_indexes(text, overlapping=True)})
        if not starts:
            return text
        pieces: list[str] = []
        at = 0
        for start in starts:
            pieces += text[at : start + 1], SENTINEL
            at = start + 1
        return "".join(pieces) + text[at:]

    def tokens(self, text: str, add_special: bool) -> list[int]:
        """A defused prompt's tokens: ``Tokenizer.tokenize(text, add_special)`` with special
        tokens parsed, but the client's defused text tokenized as plain text."""
        vocab = self.vocab
        tokens = [llama_cpp.llama_vocab_bos(vocab)] if add_special and llama_cpp.llama_vocab_get_add_bos(vocab) else []
        at = 0
        for left, right, token in self.partition(text):
            tokens += self._plain(text[at:left])
            tokens.append(token)
            at = right
        tokens += self._plain(text[at:])
        if add_special and llama_cpp.llama_vocab_get_add_eos(vocab):
            tokens.append(llama_cpp.llama_vocab_eos(vocab))
        return tokens

    def _plain(self, piece: str) -> list[int]:
        # Each piece alone, as llama.cpp tokenizes the pieces between special tokens (a
        # SentencePiece vocabulary's space prefix included).
        text = SENTINELS.sub(lambda match: match.group(1) if match.group(2) else "", piece)
        return self.tokenize(text, add_bos=False, special=False) if text else []

    def partition(self, text: str) -> list[tuple[int, int, int]]:
        """Where llama.cpp, parsing special tokens, reads them in ``text``: (start, end, token)
        in order, start and end past the spaces an LSTRIP or RSTRIP token takes (Phi-3's). As
        llama.cpp's ``tokenizer_st_partition``: the longest texts first (in bytes), each at its
        occurrences from the left, in what is still text."""
        if self.automaton is None:
            return []
        matches = self.automaton.find_matches_as_indexes(text, overlapping=True)
        matches.sort(key=lambda match: (-self.sizes[match[0]], match[1]))
        taken: list[tuple[int, int, int]] = []
        lefts: list[int] = []
        for index, start, end in matches:
            at = bisect.bisect_right(lefts, start)
            low = taken[at - 1][1] if at else 0
            high = taken[at][0] if at < len(taken) else len(text)
            if start < low or end > high:
                continue  # in a token read already, or in the spaces it took
            token, attr = self.token_attrs[index]
            left, right = start, end
            if attr & llama_cpp.LLAMA_TOKEN_ATTR_LSTRIP:
                while left > low and text[left - 1] in SPACES:
                    left -= 1
            if attr & llama_cpp.LLAMA_TOKEN_ATTR_RSTRIP:
                while right < high and text[right] in SPACES:
                    right += 1
            taken.insert(at, (left, right, token))
            lefts.insert(at, left)
        return taken


def _strings(value: Any, out: list[str]) -> None:
    """Every string in ``value`` (a request's JSON: 64 levels at most), keys too, into ``out``;
    exact types first (half the time of ``isinstance`` alone: 0.035 ms for a Codex turn's 561
    strings), their subclasses too."""
    stack = [value]
    append, pop = out.append, stack.pop
    while stack:
        node = pop()
        kind = type(node)
        if kind is str:
            append(node)
        elif kind is dict or isinstance(node, dict):
            for key, item in node.items():
                if isinstance(key, str):
                    append(key)
                if type(item) is str:
                    append(item)
                else:
                    stack.append(item)
        elif kind is list or isinstance(node, (list, tuple)):
            stack.extend(node)
        elif isinstance(node, str):
            append(node)


def _arguments(call: Any) -> str:
    """A call's arguments as the template reads them (tool_formats/ decode their JSON), where
    escapes (``\\u003c``) could hide a special token's text: decoded, written again without
    them; "" where the text is read as it stands."""
    function = call.get("function") if isinstance(call, dict) else None
    text = function.get("arguments") if isinstance(function, dict) else None
    if not isinstance(text, str) or "\\" not in text:
        return ""
    try:
        value = json.loads(text)
        return json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else ""
    except (ValueError, RecursionError):
        return ""
